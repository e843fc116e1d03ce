"""`oas config reload`: check the OAS_CONFIG file, then have running servers apply it.

The file is validated here first, so a mistake is shown where it was made; the servers
validate it again on SIGHUP (and keep their rules if it fails there, logging why).
"""

from __future__ import annotations

import os
import signal
import sys

from src.cli.pidfile import running_servers
from src.core.config_file import ConfigError
from src.core.settings import get_settings


def reload_config() -> int:
    try:
        settings = get_settings()  # reads (and so checks) the file
    except ConfigError as exc:
        print(f"oas: not reloaded: {exc}", file=sys.stderr)
        return 1
    if settings.config_file is None:
        print("oas: OAS_CONFIG is not set: there is no file to reload", file=sys.stderr)
        return 2
    config = settings.config
    servers = list(running_servers(settings.data_dir))
    if not servers:
        print(
            f"oas: no running `oas serve` found under {settings.data_dir / 'run'}", file=sys.stderr
        )
        return 1
    for pid, port in servers:
        os.kill(pid, signal.SIGHUP)
        print(
            f"reloaded {settings.config_file} in oas on port {port} (pid {pid}): "
            f"{len(config.routes)} routes, {len(config.models)} models, "
            f"{len(config.clients)} clients"
        )
    return 0
