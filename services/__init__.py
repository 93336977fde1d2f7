"""The Trial Ledger services: four command services and the projections service."""
