"""Identity: users, roles, login, lockout, and re-authentication for electronic signatures.

The one identity authority of the trial (a service of its own, with its own store and
topic, so that account and permission changes are audited like clinical events).
"""
