"""Spend: what each request cost, per client, model and session, in a database that
replicas share, and the monthly budgets checked against it."""
