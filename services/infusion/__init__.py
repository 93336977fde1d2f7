"""The infusion service: not built yet (issue #5). See ../shared/DESIGN.md."""
