"""Pydantic contracts of the published events, one module per service.

These are the public, versioned schemas that downstream consumers rely on.
"""
