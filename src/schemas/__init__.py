"""Pydantic models of the wire formats."""
