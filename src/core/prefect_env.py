"""Which Prefect server `oas` talks to: one, the dashboard's, fixed before Prefect loads.

Prefect reads its settings once, when it is first imported, and with no API URL its
default profile starts a throwaway "ephemeral" server (SQLite under ~/.prefect, telemetry
on) for whatever call comes first. For `oas` that is always wrong: a deployment registered
there is invisible on the dashboard and its runs crash. So every `oas` command turns
ephemeral mode and telemetry off before anything can import Prefect, and the API URL is
set (or changed) only through `use_prefect_api`, which also makes an already imported
Prefect read it again.
"""

from __future__ import annotations

import os
import sys

#: what every `oas` process sets, whatever Prefect profile the user has active
PINNED = {
    # no API URL is an error ("PREFECT_API_URL is not set"), never a second server
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def forbid_ephemeral_server() -> None:
    """Turn Prefect's ephemeral server and its telemetry off for this process and its
    children (call before the first Prefect import; harmless after)."""
    os.environ.update(PINNED)
    _reload_if_imported()


def use_prefect_api(api_url: str) -> None:
    """Point this process (and the flow-run processes it starts) at `api_url`."""
    os.environ.update(PINNED)
    os.environ["PREFECT_API_URL"] = api_url
    _reload_if_imported()


def _reload_if_imported() -> None:
    """Prefect cached its settings at import: make it read the environment again."""
    context = sys.modules.get("prefect.context")
    refresh = getattr(context, "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()
