"""One logging configuration for the whole process.

structlog renders every line; the standard library's loggers (uvicorn, Prefect, httpx)
are routed through the same processors, so there is one format and one place to look.
Console output for a person, JSON lines when `OAS_LOG_FORMAT=json`; with `OAS_LOG_FILE`
the same lines also go to a file (0600) that rotates at midnight (UTC), keeping
`OAS_LOG_RETENTION_DAYS` old files.

No secret reaches a log: every rendered line, tracebacks included, is searched for the
secret values this process was configured with (`src.core.secrets`: the upstream key,
client keys, MCP tokens) and for anything shaped like an API key; and tracebacks carry
no local variables (a request's locals hold its headers, `x-api-key` among them).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from src.core import secrets

if TYPE_CHECKING:
    from src.core.settings import Settings

_SECRET = re.compile(r"(sk-(?:or-v1-|ant-)?[A-Za-z0-9_\-]{8,})")
_TOKEN_FIELD = re.compile(r'("authorization_token"\s*:\s*)"[^"]*"')

# Log files found readable by others and made private, to say so once logging is set up.
_tightened: list[Path] = []

# Whether `log_payload` may log bodies (OAS_DEBUG_PAYLOADS); set by `configure_logging`.
_payloads_allowed = False


MASKED = "[masked]"


def mask_secrets(text: str) -> str:
    """`text` with the configured secrets masked, and anything shaped like an API key cut
    to its first characters."""
    for secret in secrets.known():
        if secret in text:
            text = text.replace(secret, MASKED)
    if "sk-" in text:
        text = _SECRET.sub(lambda m: m.group(0)[:6] + "…" + MASKED, text)
    return text


def _mask_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Mask secrets in each field (so JSON fields stay readable)."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = mask_secrets(value)
    return event_dict


def _mask_rendered(_: Any, __: str, line: Any) -> Any:
    """The last step: mask the whole rendered line, tracebacks and reprs included."""
    return mask_secrets(line) if isinstance(line, str) else line


class _PrivateFileHandler(logging.handlers.TimedRotatingFileHandler):
    """Every log file it opens (the first and each after a rotation) is 0600."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


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


def _renderers(fmt: str, colors: bool) -> list[Any]:
    """The renderer, after tracebacks are made plain text: no local variables (rich's
    pretty tracebacks show them) and no colour codes that could split a secret in two
    before `_mask_rendered` looks for it."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    return [structlog.processors.format_exc_info, renderer]


def _file_handler(path: Path, retention_days: int) -> logging.Handler:
    """Daily rotation at midnight UTC; `retention_days` rotated files are kept."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
        _tightened.append(path)
    return _PrivateFileHandler(
        path, when="midnight", backupCount=retention_days, encoding="utf-8", utc=True
    )


def configure_logging(
    level: str = "INFO",
    fmt: str = "console",
    *,
    log_file: Path | None = None,
    retention_days: int = 7,
    payloads: bool = False,
    prefect: bool = False,
) -> None:
    """Configure structlog and route stdlib logging through it (idempotent).

    `prefect=True` also routes Prefect's loggers (imports Prefect: call it after
    PREFECT_API_URL is final).
    """
    global _payloads_allowed
    _payloads_allowed = payloads
    if prefect:
        route_prefect_logs()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    # Processors added by others that must outlive a reconfiguration (the recorder's copy
    # of each line into its run: src/tracking/logs.py) stay, before the formatter.
    kept = [
        p for p in structlog.get_config()["processors"] if getattr(p, "keep_on_reconfigure", False)
    ]
    structlog.configure(
        processors=[*shared, *kept, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    def formatter(colors: bool) -> logging.Formatter:
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderers(fmt, colors),
                _mask_rendered,
            ],
        )

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(sys.stderr.isatty()))
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        file_handler = _file_handler(Path(log_file).expanduser(), retention_days)
        file_handler.setFormatter(formatter(False))
        handlers.append(file_handler)
    root = logging.getLogger()
    for old in root.handlers:
        if old not in handlers:
            old.close()
    root.handlers = handlers
    root.setLevel(level.upper())
    while _tightened:
        structlog.get_logger("oas.logging").warning(
            "made a log file private (it was readable by others)",
            file=str(_tightened.pop()),
            mode="0600",
        )
    for name in ("uvicorn", "uvicorn.error", "prefect", "httpx", "httpcore", "LiteLLM"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request
    for noisy in ("httpx", "httpcore", "LiteLLM", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_from_settings(
    settings: Settings, level: str | None = None, *, prefect: bool = False
) -> None:
    """`configure_logging` with everything the settings say (level may be overridden);
    the secrets of `settings` are masked from here on."""
    secrets.remember_from_settings(settings)
    configure_logging(
        level or settings.log_level,
        settings.log_format,
        log_file=settings.log_file,
        retention_days=settings.log_retention_days,
        payloads=settings.debug_payloads,
        prefect=prefect,
    )


def log_payload(logger: Any, event: str, payload: Any) -> None:
    """Log a request or response body at DEBUG, if OAS_DEBUG_PAYLOADS allows it.

    Off by default in production. Cheap when off (a flag and a level check), so it may sit
    on the request path; keys and MCP tokens in the body are masked.
    """
    if not _payloads_allowed or not logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    text = orjson.dumps(payload, default=str).decode()
    text = _TOKEN_FIELD.sub(r'\1"[redacted]"', text)
    logger.debug(event, payload=mask_secrets(text), bytes=len(text))
