"""Infusion: leukapheresis, product release, lymphodepletion and the CAR-T infusion,
checked against the protocol and against enrollment as the enrollment topic tells it."""
