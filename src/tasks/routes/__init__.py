"""Routing rules: which upstream model answers a request, and why (`routes:` in OAS_CONFIG).

`features` reads what rules ask about a request; `table` compiles the rules and picks the
first that matches.
"""

from src.tasks.routes.features import RequestFeatures
from src.tasks.routes.table import Decision, NeedsTokens, RouteTable, route_table

__all__ = ["Decision", "NeedsTokens", "RequestFeatures", "RouteTable", "route_table"]
