"""Every tool the pinned releases offer, and how the tests cover it: the release x tool matrix.

A release's offered tools are read from its own requests (the `tools` of its main-loop
requests, plus the deferred tools 2.1 lists by name in a system message). A tool that is
not in `COVERED` or `NOT_TESTABLE` fails the test: a new release brought a tool nobody has
looked at yet.

The matrix the tests produce is written as JSON when `OAS_CLAUDE_CODE_MATRIX` names a
file (`make claude-code-matrix` does it); docs/02-claude-code.md carries it as a table,
and tests/test_docs_claude_code.py checks the page against the committed
`docs/claude-code-matrix.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Tools some test calls through oas (the tour, or a scenario of its own).
COVERED = {
    "Write",
    "Read",
    "Edit",
    "MultiEdit",
    "Glob",
    "Grep",
    "Bash",
    "BashOutput",
    "KillShell",
    "TaskOutput",
    "TaskStop",
    "NotebookEdit",
    "TodoWrite",
    "ToolSearch",
    "ExitPlanMode",
    "EnterPlanMode",
    "AskUserQuestion",
    "SlashCommand",
    "Skill",
    "LSP",
    "ListAgents",
    "CronCreate",
    "CronList",
    "CronDelete",
    "Monitor",
    "ReportFindings",
    "ScheduleWakeup",
    "SendMessage",
    "Workflow",
    "EnterWorktree",
    "ExitWorktree",
    "Task",
    "Agent",
    "WebSearch",
    "WebFetch",
}

# Tools a release offers that cannot run headless or offline, and why (shown in the docs).
NOT_TESTABLE = {
    "DeferredToolPlaceholder": 'not a tool: keeps deferred loading on ("never call this tool")',
}

# How a result shows in the docs table.
LABELS = {"pass": "✅", "denied": "✅ denied (asks the user; `-p` refuses)"}

DEFERRED_HEADER = "The following deferred tools are now available via ToolSearch"


def offered_tools(bodies: list[dict[str, Any]]) -> set[str]:
    """The tools these Anthropic request bodies offer, deferred ones included."""
    names: set[str] = set()
    for body in bodies:
        names.update(t.get("name") for t in body.get("tools") or [] if t.get("name"))
        for message in body.get("messages") or []:
            content = message.get("content")
            texts = (
                [content]
                if isinstance(content, str)
                else [b.get("text", "") for b in content or [] if isinstance(b, dict)]
            )
            for text in texts:
                if DEFERRED_HEADER in text:
                    listing = text.split(DEFERRED_HEADER, 1)[1].split("\n\n", 1)[0]
                    names.update(re.findall(r"^([A-Z]\w+)$", listing, re.MULTILINE))
    return names


def unknown_tools(offered: set[str]) -> set[str]:
    return offered - COVERED - set(NOT_TESTABLE)


class Matrix:
    """Collects release x tool results over a test session; written out at the end."""

    def __init__(self) -> None:
        self.offered: dict[str, set[str]] = {}
        self.results: dict[str, dict[str, str]] = {}

    def offer(self, version: str, tools: set[str]) -> None:
        self.offered.setdefault(version, set()).update(tools)

    def record(self, version: str, tool: str, status: str) -> None:
        self.results.setdefault(version, {})[tool] = status

    def table(self) -> dict[str, dict[str, str]]:
        """version -> tool -> status ("pass", "denied", "not offered", or why not tested)."""
        out: dict[str, dict[str, str]] = {}
        for version, offered in sorted(self.offered.items()):
            row = {}
            for tool in sorted(offered):
                row[tool] = self.results.get(version, {}).get(tool) or NOT_TESTABLE.get(
                    tool, "not tested"
                )
            out[version] = row
        return out

    def write(self, path: Path) -> None:
        """Merge this run's releases into the JSON file (other releases are kept)."""
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing.update(self.table())
        path.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")


def markdown(matrix: dict[str, dict[str, str]]) -> str:
    """The docs table: a row per tool, a column per release."""
    versions = sorted(matrix, key=lambda v: tuple(int(p) for p in v.split(".")))
    tools = sorted({t for row in matrix.values() for t in row})
    lines = ["| tool | " + " | ".join(versions) + " |", "| --- |" + " --- |" * len(versions)]
    for tool in tools:
        cells = []
        for version in versions:
            status = matrix[version].get(tool)
            if status is None:
                cells.append("-")
            elif status.startswith("answered:"):  # ran; its answer is an error, and says why
                cells.append("✅ " + status)
            else:
                cells.append(LABELS.get(status, status))
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
