"""Coordinators: pick the flow, run it tracked, and turn its result into a response.

The only layer that knows both the web side (`src.api.responses`) and Prefect
(`src.tracking`, `src.flows`).
"""
