"""The study definitions, one folder per study (``<study_id>/definition.json``), and their
JSON Schema; packaged data read by ``shared.study`` (docs/studies.md)."""
