"""Plumbing shared by the Trial Ledger services: settings, the event envelope and
contracts, event-store wiring, topics, the relay, HTTP error mapping.

No clinical rule lives here; those belong to each service's ``domain.py``.
"""
