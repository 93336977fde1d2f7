"""The pure kernel: imports no database, Kafka, HTTP or token library (import-linter)."""
