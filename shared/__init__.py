"""Code shared by the Trial Ledger services, in layers (import-linter checks them,
``[tool.importlinter]`` in pyproject.toml):

- ``shared.kernel``: pure building blocks (provenance, the envelope, records and their
  signatures, keys, settings, logs, the permission table); no database, Kafka or HTTP.
- ``shared.study``: a study's definition (protocol id, criteria, doses, design, calendar,
  visits, endpoints) as a pydantic model, and the loader of the packaged
  ``studies/<study>/definition.json`` (reads that file, nothing else).
- ``shared.clinical``: the clinical rules several services need (the study's calendar,
  from its definition: study-day convention and windows; study days, the open 3+3
  cohort, what is known of an infusion); pure.
- ``shared.adapters``: PostgreSQL and Kafka (event store, outbox, relay, topics, local
  views of other services' topics).
- ``shared.web``: HTTP (the app, tokens, input guard, health and metrics, serving).

``shared.contracts`` (the event contracts, as pydantic models) is pure too; ``shared.contract_docs``
generates the documents from them. A service's own rules live in its ``domain.py``.
"""
