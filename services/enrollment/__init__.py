"""Enrollment: registration, informed consent, screening, eligibility, enrollment,
withdrawal and corrections, checked against the NCT05030779 protocol record."""
