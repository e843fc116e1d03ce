"""The HTTP side: routes, auth, size limits, error shape and SSE framing.

Knows nothing of Prefect."""
