"""A run's own log lines, for its Logs tab in Prefect.

Every structlog line logged while a `Run` is the current one (the flow's steps, the
coordinator around them) is also kept in that run, masked and bounded; the recorder sends
them with its other writes, many runs' lines in one `POST /logs/`. DEBUG lines are kept
too, so the run shows what the terminal at INFO leaves out (the model chosen, each
attempt); request and response bodies are DEBUG lines that `log_payload` only emits when
`OAS_DEBUG_PAYLOADS` allows.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import structlog

from src.core.logging import mask_secrets
from src.tracking.events import iso
from src.tracking.run import Run, current_run

MAX_LINE_CHARS = 32_000  # a body logged at DEBUG can be large; Prefect keeps it whole

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}
# Already in the run's parameters, or structlog's own bookkeeping.
_SKIP = frozenset(
    {
        "event",
        "timestamp",
        "level",
        "logger",
        "request_id",
        "session_id",
        "exc_info",
        "stack_info",
        "_record",
        "_from_structlog",
    }
)


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text) if isinstance(value, str) and (" " in text or not text) else text


def render_line(event_dict: dict[str, Any]) -> str:
    """`event key=value ...` with anything shaped like a key masked, cut to a bound."""
    parts = [str(event_dict.get("event", ""))]
    parts += [f"{k}={_value(v)}" for k, v in event_dict.items() if k not in _SKIP]
    text = " ".join(parts)
    exc_info = event_dict.get("exc_info")
    if exc_info:
        if exc_info is True:
            import sys

            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            text += "\n" + "".join(traceback.format_exception(*exc_info))
    if "sk-" in text:
        text = mask_secrets(text)
    if len(text) > MAX_LINE_CHARS:
        text = f"{text[:MAX_LINE_CHARS]}…[{len(text) - MAX_LINE_CHARS} more characters]"
    return text


def keep_in_run(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: a copy of the line for the current run, if there is one.

    Inside a real Prefect flow run (a replay) the run does not record its tasks and
    Prefect's own engine owns the Logs tab, so nothing is kept there."""
    run = current_run.get()
    if run is not None and run.record_tasks:
        name = event_dict.get("logger") or getattr(logger, "name", None) or "oas"
        run.add_log(_LEVELS.get(method_name, logging.INFO), str(name), render_line(event_dict))
    return event_dict


keep_in_run.keep_on_reconfigure = True  # type: ignore[attr-defined]  # see configure_logging


def install() -> None:
    """Add `keep_in_run` to structlog's processors (once), before the renderer.

    The list is changed in place, so loggers that cached their processors see it too.
    """
    processors = structlog.get_config()["processors"]
    if keep_in_run not in processors:
        processors.insert(max(0, len(processors) - 1), keep_in_run)


def log_records(run: Run, flow_run_id: str) -> list[dict[str, Any]]:
    """The run's lines as Prefect `LogCreate` bodies, and one saying how many were left out."""
    records = [
        {
            "name": line.name,
            "level": line.level,
            "message": line.message,
            "timestamp": iso(line.timestamp),
            "flow_run_id": flow_run_id,
            "task_run_id": str(line.task_run_id) if line.task_run_id else None,
        }
        for line in run.logs
    ]
    if run.logs_dropped:
        records.append(
            {
                "name": "oas.recorder",
                "level": logging.WARNING,
                "message": f"{run.logs_dropped} more log lines of this run not kept",
                "timestamp": iso(run.ended or run.started),
                "flow_run_id": flow_run_id,
                "task_run_id": None,
            }
        )
    return records
