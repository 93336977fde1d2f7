"""Infusion: leukapheresis, product release, lymphodepletion and the CAR-T infusion,
checked against the protocol and against enrolment as the enrollment topic tells it."""
