"""Enrollment: registration, informed consent, screening, eligibility, enrollment,
withdrawal and corrections, checked against each study's definition (the caller's)."""
