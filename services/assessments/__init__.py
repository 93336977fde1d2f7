"""The assessments service: not built yet (issue #7). See ../shared/DESIGN.md."""
