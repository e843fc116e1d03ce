"""`oas serve`: the server, and the Prefect server it needs when none is configured.

On SIGTERM (or Ctrl-C) the server stops accepting connections at once, lets the requests
under way (streams included) finish for up to `OAS_SHUTDOWN_TIMEOUT` seconds, cancels what
is left (those flow runs end as Cancelled, their upstream connections closed), writes the
pending flow runs to Prefect, and only then stops the local Prefect server and database.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys

import structlog
from pydantic import ValidationError

from src.core.config_file import ConfigError
from src.core.logging import configure_logging
from src.core.settings import Settings, get_settings

log = structlog.get_logger("oas.serve")

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname or an interface name: assume others can reach it


def exposure_warning(host: str, settings: Settings) -> str | None:
    """The warning to shout when others can reach this server without a client key."""
    if is_loopback(host) or settings.api_keys:
        return None
    return (f"LISTENING ON {host} WITHOUT OAS_API_KEYS: anyone who can reach this port can "
            "use it and spend your upstream credits. Set OAS_API_KEYS, or bind to 127.0.0.1.")


def serve(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM; stop whatever was started here."""
    try:
        settings = get_settings()
    except (ConfigError, ValidationError) as exc:
        print(f"oas: cannot start: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    host = args.host or settings.host
    port = args.port or settings.port
    if args.no_prefect:
        settings.tracking = False

    local = None
    if settings.tracking and not settings.prefect_api_url:
        from src.runtime.prefect_server import LocalPrefectServer

        local = LocalPrefectServer(settings.data_dir, settings.prefect_port, settings.prefect_db)
        try:
            settings.prefect_api_url = local.start()
        except RuntimeError as exc:
            log.error("could not start the local Prefect server", error=str(exc))
            return 1
        # Prefect's client reads this when it is first imported, below.
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url

    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so the
    # `finally` below still stops the Prefect server and database started here.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        import uvicorn

        from src.api.app import create_app

        configure_logging(settings.log_level, settings.log_format)  # again, after Prefect's import
        if warning := exposure_warning(host, settings):
            log.warning(warning, host=host)
            print(f"\n!!! {warning}\n", file=sys.stderr, flush=True)
        print(f"oas listening on http://{host}:{port}", flush=True)
        if settings.tracking and settings.prefect_api_url:
            dashboard = settings.prefect_api_url.removesuffix("/api")
            print(f"Prefect dashboard: {dashboard}", flush=True)
        else:
            print("Prefect tracking: off", flush=True)
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_timeout,
            loop="uvloop",
            http="httptools",
        )
        uvicorn.Server(config).run()
    finally:
        if local is not None:
            log.info("stopping the local Prefect server")
            local.stop()
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)
