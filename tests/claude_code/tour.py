"""A tour of a release's tools: one session that calls each local tool and checks its result.

The scripted model calls the tools in a few turns, several calls per turn (parallel calls,
as real sessions make them), and each turn first checks what the previous turn's calls
returned: a pattern the result must match, built from values only the tool could know
(a random token in a file, a background shell's id, a cron job's id). So a tool counts
as passed only if Claude Code ran it and its result came back through `oas` to the model.

Tools that ask the user (ExitPlanMode and AskUserQuestion from 2.0) cannot be answered in
`-p` mode: Claude Code denies them, and the tour checks that the denial reached the model
(status `denied`). Each family of releases (1.0, 2.0, 2.1) has its own plan, because the
tool sets differ; `tools.py` says how each offered tool is covered.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.claude_code.model import ScriptedModel, Turn, marker_for
from tests.claude_code.scenarios import Scenario
from tests.support.upstream import Reply, ToolCall

Args = dict[str, Any] | Callable[[dict[str, str]], dict[str, Any]]


@dataclass
class Probe:
    """One tool call of the tour and what its result must show."""

    tool: str
    args: Args
    expect: str  # regex the result must match; `{tok}` and state keys are filled in
    status: str = "pass"  # what the matrix shows: "pass", "denied", or what the answer was
    error: bool = False  # the result is an error (Claude Code refused: the expected outcome)
    capture: str | None = None  # state key set from the regex's first group
    follow: str | None = None  # text the next request must carry (a skill's or command's body)


@dataclass
class Tour:
    """The outcome of a tour session: which tools passed (or were denied, as expected)."""

    results: dict[str, str] = field(default_factory=dict)  # tool -> status
    problems: list[str] = field(default_factory=list)


def _fill(text: str, state: dict[str, str]) -> str:
    for key, value in state.items():
        text = text.replace("{" + key + "}", value)
    return text


def tour(work: Path, plan: list[list[Probe]], *, git: bool = False) -> tuple[Scenario, Tour]:
    """A scenario that runs `plan` (turns of probes) in `work`; the Tour fills in as it runs."""
    tok = secrets.token_hex(4)
    state = {"tok": tok, "work": str(work)}
    (work / "a.py").write_text(f'print("hello {tok}")\n')
    cell = {
        "cell_type": "code",
        "id": "cell-ab12",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": [f"x = '{tok}'"],
    }
    (work / "n.ipynb").write_text(
        json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    commands = work / ".claude" / "commands"
    commands.mkdir(parents=True)
    (commands / "greet.md").write_text(f"---\ndescription: Greets\n---\nSay greet-{tok}.\n")
    skill = work / ".claude" / "skills" / "hello"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        f"---\nname: hello\ndescription: Says hello\n---\nThe skill word is skill-{tok}.\n"
    )
    if git:
        for argv in (
            ["git", "init", "-q"],
            ["git", "add", "-A"],
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"],
        ):
            subprocess.run(argv, cwd=work, check=True, capture_output=True)
    outcome = Tour()

    def check(turn: Turn, probes: list[Probe]) -> None:
        by_id = {o.call_id: o for o in turn.outcomes}
        for n, probe in enumerate(probes):
            found = by_id.get(f"call_{turn.step - 1}_{n}")
            if found is None or found.result is None:
                turn.require(False, f"{probe.tool}: no result")
                continue
            pattern = _fill(probe.expect, {k: re.escape(v) for k, v in state.items()})
            match = re.search(pattern, found.result)
            failed_as_expected = found.failed == probe.error
            followed = probe.follow is None or _fill(probe.follow, state) in json.dumps(
                turn.body.get("messages")
            )
            if turn.require(
                bool(match) and failed_as_expected and followed,
                f"{probe.tool}: {found.result[:400]!r} !~ {pattern!r} "
                f"(or the next request lacks {probe.follow!r})",
            ):
                outcome.results[probe.tool] = probe.status
                if probe.capture and match:
                    state[probe.capture] = match.group(1)

    def make_step(index: int) -> Callable[[Turn], Reply]:
        def step(turn: Turn) -> Reply:
            if index:
                check(turn, plan[index - 1])
            if turn.model.problems:
                return turn.broken()
            if index == len(plan):
                return Reply(text=f"Tour finished: {len(outcome.results)} tools {tok}.")
            calls = []
            for n, probe in enumerate(plan[index]):
                args = probe.args(state) if callable(probe.args) else probe.args
                args = json.loads(_fill(json.dumps(args), state))
                calls.append(ToolCall(probe.tool, args, id=f"call_{index}_{n}"))
            return Reply(text=f"Turn {index}.", tool_calls=calls)

        return step

    model = ScriptedModel(marker_for("tour"), [make_step(i) for i in range(len(plan) + 1)])
    outcome.problems = model.problems
    scenario = Scenario(
        "tour", f"Try every tool you have. {marker_for('tour')}", model, answer=f"tools {tok}."
    )
    return scenario, outcome


# -- the plans ---------------------------------------------------------------------------

W = "{work}"
BG = Probe(
    "Bash",
    {
        "command": "echo bg-{tok}; sleep 60",
        "run_in_background": True,
        "description": "Start a background job",
    },
    r"running in background with ID: (\w+)",
    capture="bg",
)
WRITE = Probe(
    "Write",
    {"file_path": f"{W}/b.py", "content": "print('b-{tok}')\n"},
    r"File created successfully",
)
TODO = Probe(
    "TodoWrite",
    {
        "todos": [
            {
                "content": "Tour the tools",
                "status": "in_progress",
                "activeForm": "Touring the tools",
            }
        ]
    },
    r"Todos have been modified successfully",
)
GLOB = Probe("Glob", {"pattern": "**/*.py", "path": W}, r"a\.py[\s\S]*b\.py")
GREP = Probe(
    "Grep",
    {"pattern": "hello {tok}", "path": W, "output_mode": "content"},
    r"a\.py:(?:1:)?print\(\"hello {tok}\"\)",
)
READ = Probe("Read", {"file_path": f"{W}/a.py"}, r"print\(\"hello {tok}\"\)")
READ_NB = Probe("Read", {"file_path": f"{W}/n.ipynb"}, r"cell-ab12[\s\S]*x = '{tok}'")
EDIT = Probe(
    "Edit",
    {"file_path": f"{W}/a.py", "old_string": "hello", "new_string": "edited"},
    r"has been updated",
)
NB_EDIT = Probe(
    "NotebookEdit",
    {
        "notebook_path": f"{W}/n.ipynb",
        "cell_id": "cell-ab12",
        "new_source": "x = 'nb-{tok}'",
        "edit_mode": "replace",
    },
    r"Updated cell cell-ab12",
)
RUN = Probe(
    "Bash",
    {"command": f"python3 {W}/a.py && python3 {W}/b.py", "description": "Run both scripts"},
    r"edited {tok}\s+multi-{tok}-2",
)
SKILL = Probe("Skill", {"skill": "hello"}, r"Launching skill: hello", follow="skill-{tok}")

PLAN_1_0 = [
    [WRITE, TODO, BG],
    [GLOB, GREP, READ, READ_NB, Probe("BashOutput", {"bash_id": "{bg}"}, r"bg-{tok}")],
    [
        EDIT,
        Probe(
            "MultiEdit",
            {
                "file_path": f"{W}/b.py",
                "edits": [
                    {"old_string": "'b-", "new_string": "'multi-"},
                    {"old_string": "{tok}'", "new_string": "{tok}-2'"},
                ],
            },
            r"Applied 2 edits",
        ),
        Probe("KillShell", {"shell_id": "{bg}"}, r"[Ss]uccessfully killed shell: {bg}"),
        NB_EDIT,
    ],
    [
        RUN,
        Probe(
            "SlashCommand",
            {"command": "/greet"},
            r"Launching slash command: /greet",
            follow="greet-{tok}",
        ),
        Probe("ExitPlanMode", {"plan": "1. Tour the tools"}, r"approved your plan"),
    ],
]

# Per family (major, minor): the plan, and whether the working directory is a git repo.
DENIED = "denied"  # asks the user, which `-p` cannot: Claude Code refuses, the model sees it
TOOL_SEARCH = Probe(
    "ToolSearch",
    {
        "query": "select:CronCreate,CronDelete,CronList,EnterWorktree,"
        "ExitWorktree,Monitor,NotebookEdit,SendMessage,"
        "TaskStop"
    },
    r"Tool loaded: CronCreate[\s\S]*Tool loaded: TaskStop",
)

PLAN_2_0 = [
    [WRITE, TODO, BG],
    [
        GLOB,
        GREP,
        READ,
        READ_NB,
        Probe(
            "TaskOutput",
            {"task_id": "{bg}", "block": False, "timeout": 1000},
            r"<task_id>{bg}</task_id>[\s\S]*bg-{tok}",
        ),
    ],
    [
        EDIT,
        Probe("KillShell", {"shell_id": "{bg}"}, r"Successfully killed shell: {bg}"),
        NB_EDIT,
        SKILL,
        Probe(
            "LSP",
            {"operation": "hover", "filePath": f"{W}/a.py", "line": 1, "character": 1},
            r"No LSP server available for file type: \.py",
            status="answered: no language server for .py",
        ),
    ],
    [
        Probe("Bash", {"command": f"python3 {W}/a.py", "description": "Run a.py"}, r"edited {tok}"),
        Probe(
            "AskUserQuestion",
            {
                "questions": [
                    {
                        "question": "Which one?",
                        "header": "Pick",
                        "multiSelect": False,
                        "options": [
                            {"label": "A", "description": "a"},
                            {"label": "B", "description": "b"},
                        ],
                    }
                ]
            },
            r"Answer questions\?",
            status=DENIED,
            error=True,
        ),
    ],
    [Probe("EnterPlanMode", {}, r"Entered plan mode")],
    [Probe("ExitPlanMode", {}, r"Exit plan mode\?", status=DENIED, error=True)],
]

PLAN_2_1 = [
    [TOOL_SEARCH, WRITE, BG],
    [
        READ,
        READ_NB,
        Probe("ListAgents", {}, r"No reachable agents"),
        SKILL,
        Probe("CronList", {}, r"No scheduled jobs"),
        Probe(
            "Monitor",
            {"command": "echo mon-{tok}", "description": "Watch a command", "timeout_ms": 5000},
            r"Monitor started \(task \w+",
        ),
    ],
    [
        EDIT,
        NB_EDIT,
        Probe("TaskStop", {"task_id": "{bg}"}, r"Successfully stopped task: {bg}"),
        Probe(
            "CronCreate",
            {"cron": "0 3 * * *", "prompt": "nightly {tok}", "recurring": False},
            r"Scheduled one-shot task (\w+)",
            capture="cron",
        ),
        Probe("ReportFindings", {"findings": []}, r"No findings reported"),
    ],
    [
        Probe("CronDelete", {"id": "{cron}"}, r"{cron}"),
        Probe("Bash", {"command": f"python3 {W}/a.py", "description": "Run a.py"}, r"edited {tok}"),
        Probe("ScheduleWakeup", {"stop": True}, r"(?i)stop|wakeup|loop"),
        Probe(
            "SendMessage",
            {"to": "main", "summary": "hello", "message": "hello"},
            r"main.{0,2}\" addresses you",
            status="answered: no other agent to message",
        ),
        Probe(
            "Workflow",
            {"name": "no-such-workflow"},
            r"Workflow \"no-such-workflow\" not found",
            status="answered: unknown workflow (running one needs sub-agents)",
            error=True,
        ),
    ],
    [Probe("EnterWorktree", {"name": "tour"}, r"[Ww]orktree")],
    [Probe("ExitWorktree", {"action": "remove", "discard_changes": True}, r"[Ww]orktree")],
]

PLANS: dict[tuple[int, int], tuple[list[list[Probe]], bool]] = {
    (1, 0): (PLAN_1_0, False),
    (2, 0): (PLAN_2_0, False),
    (2, 1): (PLAN_2_1, True),
}
