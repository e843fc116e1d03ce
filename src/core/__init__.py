"""Shared building blocks: settings, logging, errors and request context."""
