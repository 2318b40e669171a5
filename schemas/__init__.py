"""Pydantic shapes: HTTP bodies and responses, workflow and activity inputs (IDs only)."""
