"""The projections service: the ledger, its views and the auditor's API and CLI
(docs/architecture.md, docs/auditing.md)."""
