"""The markdown artifact each flow run carries: what an operator asks first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from src.tracking.run import Run


def _fmt(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _problems(value: Any) -> str | None:
    """`tool_argument_problems` ({tool: [problem, ...]}) as one cell."""
    if not isinstance(value, dict) or not value:
        return None
    return "; ".join(f"{tool}: {', '.join(map(str, problems))}" for tool, problems in value.items())


def render_summary(run: Run) -> str:
    """A two-column table, then the task timings; nothing secret ever enters `summary`."""
    s = run.summary
    usage = s.get("usage") or {}
    ttft = s.get("ttft_ms")
    rows: list[tuple[str, Any]] = [
        ("request id", run.parameters.get("request_id")),
        ("client model", run.parameters.get("model")),
        ("upstream model", run.upstream_model),
        ("provider", s.get("provider")),
        ("route", s.get("route")),
        ("client", s.get("client")),
        ("stream", run.parameters.get("stream")),
        ("state", run.state),
        ("stop reason", s.get("stop_reason")),
        ("input tokens", usage.get("input_tokens")),
        ("output tokens", usage.get("output_tokens")),
        ("cache read tokens", usage.get("cache_read_input_tokens")),
        ("cache write tokens", usage.get("cache_creation_input_tokens")),
        ("cost (USD)", s.get("cost")),
        ("time to first token (ms)", round(ttft, 1) if ttft is not None else None),
        ("duration (ms)", round(run.duration * 1000, 1)),
        ("tool calls", s.get("tool_calls")),
        ("server tools", "; ".join(s.get("server_tools") or []) or None),
        ("code execution container", s.get("container")),
        ("isolation tier", s.get("sandbox")),
        ("tool argument problems", _problems(s.get("tool_argument_problems"))),
        ("attempts", "; ".join(s.get("attempts") or []) or None),
        ("fallbacks", s.get("fallbacks")),
        ("error", run.message if run.state != "COMPLETED" else None),
        (
            "payload bytes (new on disk)",
            f"{s.get('payload_bytes', '-')} ({s.get('payload_new_bytes', '-')})",
        ),
        ("replayed from", s.get("replay_of")),
        ("started", datetime.fromtimestamp(run.started, UTC).isoformat(timespec="milliseconds")),
        (
            "log lines",
            f"{len(run.logs)} (+{run.logs_dropped} not kept)"
            if run.logs_dropped
            else len(run.logs),
        ),
    ]
    lines = ["| field | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows]
    if run.tasks:
        lines += ["", "| task | state | ms |", "| --- | --- | --- |"]
        for task in run.tasks:
            ms = ((task.ended or run.started) - task.started) * 1000
            lines.append(f"| {task.name} | {task.state} | {ms:.1f} |")
    return "\n".join(lines)
