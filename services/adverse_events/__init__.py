"""The adverse events service: not built yet (issue #6). See ../shared/DESIGN.md."""
