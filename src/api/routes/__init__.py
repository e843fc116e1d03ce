"""HTTP routes, grouped by what the client wants."""
