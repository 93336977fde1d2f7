"""Adverse events: CTCAE v5.0 and ASTCT grading, DLT and TEAE windows, 3+3 dose escalation."""
