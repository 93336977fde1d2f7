"""On-demand benchmarks of the projections service (not part of the test suite).

Run from the repository root with the local stack's settings, e.g.
``python -m bench.ingest``; see docs/performance.md.
"""
