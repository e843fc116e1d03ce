"""One logging configuration for the whole process.

structlog renders every line; the standard library's loggers (uvicorn, Prefect, httpx)
are routed through the same processors, so there is one format and one place to look.
Console output for a person, JSON lines when `OAS_LOG_FORMAT=json`.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET = re.compile(r"(sk-(?:or-v1-|ant-)?[A-Za-z0-9_\-]{8,})")


def _mask_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Mask anything shaped like an API key, wherever it hides in a log line."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "sk-" in value:
            event_dict[key] = _SECRET.sub(lambda m: m.group(0)[:6] + "…[masked]", value)
    return event_dict


def route_prefect_logs() -> None:
    """Let Prefect configure its loggers once, then send their lines through ours.

    Prefect's handlers that ship run logs to its API stay (they make flow-run logs visible
    in the dashboard); its console handlers go, so every line has one format.
    """
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import APILogHandler

    setup_logging()
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.startswith("prefect"):
            logger.handlers = [h for h in logger.handlers if isinstance(h, APILogHandler)]
            logger.propagate = True


def configure_logging(level: str = "INFO", fmt: str = "console", *, prefect: bool = False) -> None:
    """Configure structlog and route stdlib logging through it (idempotent).

    `prefect=True` also routes Prefect's loggers (imports Prefect: call it after
    PREFECT_API_URL is final).
    """
    if prefect:
        route_prefect_logs()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "prefect", "httpx", "httpcore", "LiteLLM"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request
    for noisy in ("httpx", "httpcore", "LiteLLM", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
