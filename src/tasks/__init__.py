"""The steps of a request, each a Prefect task (see `src.tracking.step`).

Tasks know neither HTTP nor each other's internals; each wraps a plain function that
unit tests call directly.
"""
