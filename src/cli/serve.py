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
from pathlib import Path

import structlog

from src.cli.pidfile import remove_pid, write_pid
from src.core.config_file import ConfigError
from src.core.logging import configure_from_settings
from src.core.prefect_env import use_prefect_api
from src.core.settings import Settings, get_settings
from src.local_prefect.private_files import secure_data_dir

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
    if is_loopback(host) or settings.api_keys or settings.config.clients:
        return None
    return (
        f"LISTENING ON {host} WITHOUT OAS_API_KEYS: anyone who can reach this port can "
        "use it and spend your upstream credits. Set OAS_API_KEYS, or bind to 127.0.0.1."
    )


def serve(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM; stop whatever was started here."""
    try:
        settings = get_settings()
    except ConfigError as exc:  # invalid settings are reported by `src.cli.main`
        print(f"oas: cannot start: {exc}", file=sys.stderr)
        return 2
    configure_from_settings(settings)
    host = args.host or settings.host
    port = args.port or settings.port
    reload = getattr(args, "reload", False)
    if reload and settings.env == "production":
        log.error("--reload is for development; unset it or set OAS_ENV=development")
        return 2
    if args.no_prefect:
        settings.tracking = False
        os.environ["OAS_TRACKING"] = "false"  # for the --reload worker, which reads its own

    secure_data_dir(settings)
    # Ctrl-C and SIGTERM end in the `finally` below, quietly: uvicorn finishes the open
    # requests, then re-raises the signal it caught, which lands here as SystemExit(0).
    signal.signal(signal.SIGTERM, _exit_quietly)
    signal.signal(signal.SIGINT, _exit_quietly)
    local = None
    if settings.tracking and not settings.prefect_api_url:
        from src.local_prefect.prefect_server import LocalPrefectServer

        local = LocalPrefectServer(settings.data_dir, settings.prefect_port, settings.prefect_db)
        settings.prefect_api_url = local.api_url
    if settings.tracking and settings.prefect_api_url:
        # Before anything imports Prefect (the token counter's warm-up below does): Prefect
        # reads its settings once, and without this would start a throwaway server.
        use_prefect_api(settings.prefect_api_url)
    pid_file = None if reload else write_pid(settings.data_dir, port)  # for `oas config reload`
    try:
        if local is not None:
            # LiteLLM's import (~5 s of CPU) overlaps the Prefect server's start. Otherwise
            # the runtime starts it once the app is imported: beside the imports it would
            # only slow them down (and the server's readiness) for nothing.
            from src.services.tokenizer import warm_up_in_background

            warm_up_in_background(settings.big_model, settings.small_model)
            try:
                local.start()
            except RuntimeError as exc:
                log.error("could not start the local Prefect server", error=str(exc))
                return 1
        _run_http(settings, host, port, reload)
    finally:
        if pid_file is not None:
            remove_pid(pid_file)
        if local is not None:
            log.info("stopping the local Prefect server")
            local.stop()
    return 0


def _run_http(settings: Settings, host: str, port: int, reload: bool) -> None:
    import uvicorn

    from src.api.app import create_app
    from src.api.http_server import raise_open_files_limit, server_config

    configure_from_settings(settings, prefect=True)  # after Prefect's environment is final
    if warning := exposure_warning(host, settings):
        log.warning(warning, host=host)
        print(f"\n!!! {warning}\n", file=sys.stderr, flush=True)
    print(f"oas listening on http://{host}:{port}", flush=True)
    if settings.tracking and settings.prefect_api_url:
        dashboard = settings.prefect_api_url.removesuffix("/api")
        print(f"Prefect dashboard: {dashboard}", flush=True)
    else:
        print("Prefect tracking: off", flush=True)
    raise_open_files_limit()  # idle connections must not run out of descriptors
    if reload:
        # The worker process imports the app afresh on every change; the Prefect server
        # and database started above stay up, so a reload takes a second, not twenty.
        from uvicorn.supervisors import ChangeReload

        config = server_config(
            "src.cli.serve:reload_app",
            settings,
            host,
            port,
            factory=True,
            reload=True,
            reload_dirs=[str(Path(__file__).resolve().parents[1])],
        )
        ChangeReload(
            config, target=uvicorn.Server(config).run, sockets=[config.bind_socket()]
        ).run()
    else:
        uvicorn.Server(server_config(create_app(settings), settings, host, port)).run()


def reload_app() -> object:
    """The app factory `--reload` workers import: settings from the environment `serve` set."""
    from src.api.app import create_app

    settings = get_settings()
    configure_from_settings(settings)
    return create_app(settings)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)
