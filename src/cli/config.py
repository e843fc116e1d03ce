"""`oas config`: the configuration `oas serve` would run with, secrets masked.

Each line names the environment variable, its effective value and where that value came
from (the environment, the `.env` file, or a default), then what follows from them: where
the server listens, which Prefect server records runs, where payloads are kept.
"""

from __future__ import annotations

import argparse
import json
import sys

from src import __version__
from src.cli.settings_info import display_value, setting_infos, sources
from src.core.settings import Settings, get_settings


def derived(settings: Settings) -> dict[str, str]:
    """What the settings add up to, in the words an operator thinks in."""
    if not settings.tracking:
        prefect = "off (OAS_TRACKING=false): requests are served, no runs are recorded"
    elif settings.prefect_api_url:
        prefect = f"the server at {display_value(settings.prefect_api_url)}"
    else:
        prefect = (
            f"a local server that `oas serve` starts: dashboard "
            f"http://127.0.0.1:{settings.prefect_port}, {settings.prefect_db} database "
            f"under {settings.data_dir / 'prefect'}"
        )
    return {
        "listens on": f"http://{settings.host}:{settings.port}",
        "upstream": f"{settings.openrouter_base_url} via {settings.upstream}",
        "Prefect": prefect,
        "payload store": str(settings.payload_store_dir),
        "log file": (
            f"{settings.log_file} (rotated daily, {settings.log_retention_days} kept)"
            if settings.log_file
            else "none (stderr only)"
        ),
        "client keys": _client_keys(settings),
        "routing": (
            f"{len(settings.config.routes)} rules, {len(settings.config.models)} "
            f"model globs, then OAS_BIG_MODEL/OAS_SMALL_MODEL"
        ),
        "spend ledger": settings.ledger_url
        and display_value(settings.ledger_url)
        or f"sqlite:///{settings.data_dir / 'spend.sqlite3'}",
    }


def _client_keys(settings: Settings) -> str:
    named = [c.name for c in settings.config.clients]
    if not named and not settings.api_keys:
        return "not required (OAS_API_KEYS and clients unset)"
    parts = [f"{len(settings.api_keys)} in OAS_API_KEYS"] if settings.api_keys else []
    if named:
        parts.append("named clients " + ", ".join(named))
    return "required: " + "; ".join(parts)


def config(args: argparse.Namespace) -> int:
    if getattr(args, "action", "show") == "reload":
        from src.cli.config_reload import reload_config

        return reload_config()
    settings = get_settings()
    origin = sources(settings)
    rows = [
        (info.env, display_value(getattr(settings, info.field)), origin[info.field])
        for info in setting_infos(type(settings))
    ]
    if args.changed:
        rows = [row for row in rows if not row[2].startswith("default")]
    if args.json:
        out = {
            "version": __version__,
            "settings": {env: {"value": value, "source": source} for env, value, source in rows},
            "derived": derived(settings),
        }
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    print(f"oas {__version__} · OAS_ENV={settings.env}\n")
    width = max((len(env) for env, _, _ in rows), default=0) + 2
    value_width = min(max((len(v) for _, v, _ in rows), default=0) + 2, 48)
    for env, value, source in rows:
        print(f"{env:<{width}}{value:<{value_width}}{source}")
    if not rows:
        print("(everything is at its default)")
    print()
    for name, value in derived(settings).items():
        print(f"{name + ':':<16}{value}")
    return 0
