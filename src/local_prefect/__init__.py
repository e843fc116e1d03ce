"""Processes `oas serve` starts beside itself: a PostgreSQL and a Prefect server."""
