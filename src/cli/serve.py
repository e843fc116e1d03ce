"""`oas serve`: the server, and the Prefect server it needs when none is configured."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import structlog

from src.core.logging import configure_from_settings
from src.core.settings import get_settings

log = structlog.get_logger("oas.serve")


def serve(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM; stop whatever was started here."""
    settings = get_settings()
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

    # LiteLLM's import (~5 s of CPU) overlaps the Prefect server's start, not the first requests.
    from src.tasks.tokens import warm_up_in_background

    warm_up_in_background(settings.big_model)

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

        configure_from_settings(settings, prefect=True)  # again, after Prefect's import
        if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
            log.warning("LISTENING BEYOND LOOPBACK WITHOUT OAS_API_KEYS: anyone who can reach "
                        "this port can spend your upstream credits", host=host)
        print(f"oas listening on http://{host}:{port}", flush=True)
        if settings.tracking and settings.prefect_api_url:
            dashboard = settings.prefect_api_url.removesuffix("/api")
            print(f"Prefect dashboard: {dashboard}", flush=True)
        else:
            print("Prefect tracking: off", flush=True)
        options = dict(host=host, port=port, log_config=None, access_log=False,
                       timeout_graceful_shutdown=30, loop="uvloop", http="httptools")
        if reload:
            # The worker process imports the app afresh on every change; the Prefect server
            # and database started above stay up, so a reload takes a second, not twenty.
            uvicorn.run("src.cli.serve:reload_app", factory=True, reload=True,
                        reload_dirs=[str(Path(__file__).resolve().parents[1])], **options)
        else:
            uvicorn.run(create_app(settings), **options)
    finally:
        if local is not None:
            log.info("stopping the local Prefect server")
            local.stop()
    return 0


def reload_app() -> object:
    """The app factory `--reload` workers import: settings from the environment `serve` set."""
    from src.api.app import create_app

    settings = get_settings()
    configure_from_settings(settings)
    return create_app(settings)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)
