"""`oas routes explain request.json`: which route a request would take, without sending it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from src.core.settings import Settings, get_settings
from src.tasks.routes import NeedsTokens
from src.tasks.routing import Route, choose_route


def explain(body: dict[str, Any], settings: Settings, client: str | None) -> dict[str, Any]:
    """The decision for `body` as the server would make it (tokens counted only if a
    rule needs them)."""
    tokens = None
    try:
        route: Route = choose_route(body, settings, client)
    except NeedsTokens:
        from src.tasks.tokens import count_request_tokens

        tokens = count_request_tokens(body, settings).input_tokens
        route = choose_route(body, settings, client, tokens)
    return {
        "tag": f"route:{route.rule}",
        "route": route.rule,
        "matched": route.matched,
        "client_model": route.client_model,
        "upstream_model": route.upstream_model,
        "fallbacks": list(route.fallbacks),
        "provider": route.provider_prefs,
        "input_tokens": tokens,
    }


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"oas: cannot read {args.request}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        print(f"oas: {args.request} is not a Messages request (no model)", file=sys.stderr)
        return 2
    if args.client and args.client not in settings.config.client_table.by_name:
        print(f"oas: no client named {args.client!r} in {settings.config_file}", file=sys.stderr)
        return 2
    decision = explain(body, settings, args.client)
    if args.json:
        json.dump(decision, sys.stdout, indent=2)
        print()
        return 0
    print(
        f"route:          {decision['tag']}"
        + (f"  ({decision['matched']})" if decision["matched"] else "")
    )
    print(f"client asked:   {decision['client_model']} (the answer names this model)")
    print(f"upstream model: {decision['upstream_model']}")
    print(f"fallbacks:      {', '.join(decision['fallbacks']) or '-'}")
    if decision["provider"] is not None:
        print(f"provider:       {json.dumps(decision['provider'])}")
    if decision["input_tokens"] is not None:
        print(f"input tokens:   {decision['input_tokens']} (counted: a rule asks)")
    return 0
