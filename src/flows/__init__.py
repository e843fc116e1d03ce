"""Flows: the order of the steps of a request. They compose tasks and nothing else."""
