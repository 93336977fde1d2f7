"""The projections service: not built yet (issue #4). See ../shared/DESIGN.md."""
