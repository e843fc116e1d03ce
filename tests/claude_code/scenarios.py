"""The coding sessions the scripted model plays, one factory per scenario.

Each factory takes the session's working directory, prepares its files (with values the
model cannot know without reading a tool result), and returns the prompt, the model and
what a user should see at the end. Paths are absolute, as Claude Code's tools require.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.claude_code.model import ScriptedModel, Turn, marker_for, tool
from tests.support.upstream import Reply, ToolCall


@dataclass
class Scenario:
    name: str
    prompt: str
    model: ScriptedModel
    answer: str  # text the final result must contain
    files: dict[Path, str] = field(default_factory=dict)  # exact content expected on disk
    env: dict[str, str] = field(default_factory=dict)
    checks: list[Callable[[], str | None]] = field(default_factory=list)  # -> problem or None


def _prompt(name: str, task: str) -> str:
    return f"{task} {marker_for(name)}"


def _first_match(pattern: str, texts: list[str]) -> str | None:
    return next((m.group(1) for t in texts if (m := re.search(pattern, t))), None)


def write_and_run(work: Path) -> Scenario:
    """Write a script with Write, run it with Bash, report what it printed."""
    token = secrets.token_hex(4)
    script = work / "hello.py"
    content = f'print("Hello from oas {token}")\n'

    def write(turn: Turn) -> Reply:
        return Reply(
            text="I'll create the script.",
            tool_calls=[tool("Write", file_path=str(script), content=content)],
        )

    def run(turn: Turn) -> Reply:
        result = turn.result_of("Write")
        turn.require(not turn.outcomes[0].failed, f"Write failed: {result!r}")
        return Reply(
            tool_calls=[tool("Bash", command=f"python3 {script}", description="Run hello.py")]
        )

    def answer(turn: Turn) -> Reply:
        output = turn.result_of("Bash")
        printed = re.search(r"Hello from oas [0-9a-f]{8}", output)
        if not turn.require(printed is not None, f"Bash output lacks the greeting: {output!r}"):
            return turn.broken()
        return Reply(text=f"The script ran and printed: {printed.group(0)}")

    model = ScriptedModel(marker_for("write-run"), [write, run, answer])
    task = "Create hello.py that prints a greeting, run it and tell me what it printed."
    return Scenario(
        "write-run",
        _prompt("write-run", task),
        model,
        answer=f"printed: Hello from oas {token}",
        files={script: content},
    )


def read_edit(work: Path) -> Scenario:
    """Read a file, edit a value found in it, read it back, run it: each call needs the last."""
    start = secrets.randbelow(9000) + 1000
    source = work / "counter.py"
    source.write_text(f"# a counter\nCOUNT = {start}\nprint(COUNT)\n")
    expected = f"# a counter\nCOUNT = {start + 1}\nprint(COUNT)\n"

    def read(turn: Turn) -> Reply:
        return Reply(
            text="Let me look at the file first.", tool_calls=[tool("Read", file_path=str(source))]
        )

    def edit(turn: Turn) -> Reply:
        found = re.search(r"COUNT = (\d+)", turn.result_of("Read"))
        if not turn.require(found is not None, "Read result lacks COUNT"):
            return turn.broken()
        value = int(found.group(1))
        return Reply(
            text=f"COUNT is {value}; I'll increment it.",
            tool_calls=[
                tool(
                    "Edit",
                    file_path=str(source),
                    old_string=f"COUNT = {value}",
                    new_string=f"COUNT = {value + 1}",
                )
            ],
        )

    def reread(turn: Turn) -> Reply:
        result = turn.result_of("Edit")
        turn.require(not turn.outcomes[0].failed, f"Edit failed: {result!r}")
        return Reply(
            tool_calls=[tool("Bash", command=f"python3 {source}", description="Run counter.py")]
        )

    def answer(turn: Turn) -> Reply:
        output = turn.result_of("Bash").strip()
        found = re.search(r"\d+", output)
        if not turn.require(found is not None, f"no number in {output!r}"):
            return turn.broken()
        return Reply(text=f"Done: counter.py now prints {found.group(0)}.")

    model = ScriptedModel(marker_for("read-edit"), [read, edit, reread, answer])
    return Scenario(
        "read-edit",
        _prompt("read-edit", "Increment COUNT in counter.py by one and run it."),
        model,
        answer=f"now prints {start + 1}",
        files={source: expected},
    )


def parallel_reads(work: Path) -> Scenario:
    """Two tool calls in one assistant turn; the answer needs both results."""
    first, second = work / "alpha.txt", work / "beta.txt"
    a, b = secrets.token_hex(4), secrets.token_hex(4)
    first.write_text(f"alpha secret {a}\n")
    second.write_text(f"beta secret {b}\n")

    def both(turn: Turn) -> Reply:
        return Reply(
            text="Reading both files at once.",
            tool_calls=[
                ToolCall("Read", {"file_path": str(first)}, id="call_alpha"),
                ToolCall("Read", {"file_path": str(second)}, id="call_beta"),
            ],
        )

    def answer(turn: Turn) -> Reply:
        results = [o.result or "" for o in turn.outcomes]
        turn.require(len(turn.outcomes) == 2, f"expected two results, got {turn.outcomes}")
        found_a = _first_match(r"alpha secret (\w+)", results)
        found_b = _first_match(r"beta secret (\w+)", results)
        if not turn.require(bool(found_a and found_b), f"missing a secret in {results!r}"):
            return turn.broken()
        return Reply(text=f"The secrets are {found_a} and {found_b}.")

    model = ScriptedModel(marker_for("parallel"), [both, answer])
    return Scenario(
        "parallel",
        _prompt("parallel", "What are the secrets in alpha.txt and beta.txt?"),
        model,
        answer=f"The secrets are {a} and {b}.",
    )


def failing_tool(work: Path) -> Scenario:
    """A command fails (is_error); the model reads the error, fixes the cause, runs it again."""
    script = work / "missing.py"
    token = secrets.token_hex(4)
    content = f'print("recovered {token}")\n'

    def run(turn: Turn) -> Reply:
        return Reply(
            tool_calls=[tool("Bash", command=f"python3 {script}", description="Run missing.py")]
        )

    def fix(turn: Turn) -> Reply:
        result = turn.result_of("Bash")
        turn.require(turn.outcomes[0].failed, f"the failing command was not an error: {result!r}")
        turn.require(
            "No such file" in result or "can't open file" in result,
            f"the error does not say why: {result!r}",
        )
        return Reply(
            text="The script does not exist yet; creating it.",
            tool_calls=[tool("Write", file_path=str(script), content=content)],
        )

    def rerun(turn: Turn) -> Reply:
        turn.require(not turn.outcomes[0].failed, f"Write failed: {turn.result_of('Write')!r}")
        return Reply(
            tool_calls=[
                tool("Bash", command=f"python3 {script}", description="Run missing.py again")
            ]
        )

    def answer(turn: Turn) -> Reply:
        output = turn.result_of("Bash")
        turn.require(not turn.outcomes[0].failed, f"second run failed: {output!r}")
        found = re.search(r"recovered [0-9a-f]{8}", output)
        if not turn.require(found is not None, f"unexpected output {output!r}"):
            return turn.broken()
        return Reply(text=f"Fixed it: the script now prints '{found.group(0)}'.")

    model = ScriptedModel(marker_for("failing-tool"), [run, fix, rerun, answer])
    return Scenario(
        "failing-tool",
        _prompt("failing-tool", "Run missing.py; if it fails, fix it."),
        model,
        answer=f"now prints 'recovered {token}'",
        files={script: content},
    )


def thinking_with_tools(work: Path) -> Scenario:
    """Reasoning streamed as thinking blocks before tool calls, over three turns."""
    notes = work / "notes.txt"
    token = secrets.token_hex(4)

    def check(turn: Turn) -> Reply:
        thought = (
            "The user wants a notes file. First I should see what is in the "
            "directory, so I do not overwrite anything."
        )
        return Reply(
            reasoning=thought,
            reasoning_details=[
                {
                    "type": "reasoning.text",
                    "signature": f"sig-{token}-1",
                    "text": thought,
                    "format": "anthropic-claude-v1",
                }
            ],
            tool_calls=[tool("Bash", command=f"ls -a {work}", description="List files")],
        )

    def write(turn: Turn) -> Reply:
        listing = turn.result_of("Bash")
        turn.require("notes.txt" not in listing, f"notes.txt already there: {listing!r}")
        thought = f"The directory has no notes.txt. I will write it with {token}."
        return Reply(
            reasoning=thought,
            reasoning_details=[
                {
                    "type": "reasoning.text",
                    "signature": f"sig-{token}-2",
                    "text": thought,
                    "format": "anthropic-claude-v1",
                }
            ],
            tool_calls=[tool("Write", file_path=str(notes), content=f"note {token}\n")],
        )

    def answer(turn: Turn) -> Reply:
        turn.require(not turn.outcomes[0].failed, f"Write failed: {turn.result_of('Write')!r}")
        return Reply(
            reasoning="The file is written; I can report back.",
            text=f"Wrote notes.txt with note {token}.",
        )

    model = ScriptedModel(marker_for("thinking"), [check, write, answer])
    return Scenario(
        "thinking",
        _prompt("thinking", "Think it through, then write notes.txt."),
        model,
        answer=f"Wrote notes.txt with note {token}.",
        files={notes: f"note {token}\n"},
        env={"MAX_THINKING_TOKENS": "4000"},
    )


def _answer_only(name: str, text: str) -> tuple[str, ScriptedModel]:
    def answer(turn: Turn) -> Reply:
        return Reply(text=text)

    return _prompt(name, "Say something."), ScriptedModel(marker_for(name), [answer])


def rate_limited_once(work: Path) -> Scenario:
    """The upstream answers the first main-loop request with 429, then works."""
    token = secrets.token_hex(4)
    prompt, model = _answer_only("rate-limited", f"Answer after a retry {token}.")
    limited: list[dict] = []

    def intercept(body: dict) -> Reply | None:
        if limited or not model.is_main_loop(body):
            return None
        limited.append(body)
        return Reply(
            status=429,
            headers={"retry-after": "1"},
            error={"code": 429, "message": "Rate limit exceeded: free-models-per-min."},
        )

    model.intercept = intercept
    return Scenario("rate-limited", prompt, model, answer=f"Answer after a retry {token}.")


def upstream_unauthorized(work: Path) -> Scenario:
    """Every upstream call fails with 401: the operator's OpenRouter key is wrong."""
    prompt, model = _answer_only("unauthorized", "never sent")
    model.intercept = lambda body: Reply(
        status=401, error={"code": 401, "message": "No auth credentials found"}
    )
    return Scenario("unauthorized", prompt, model, answer="No auth credentials found")


def credits_run_out(work: Path, *, topped_up: threading.Event) -> Scenario:
    """Write a file, then the upstream refuses the next turn with 402 (the OpenRouter account
    ran out of credits) until `topped_up` is set: the session ends with the error, and
    retrying the failed request afterwards gets the final answer."""
    notes = work / "notes.txt"
    token = secrets.token_hex(4)

    def write(turn: Turn) -> Reply:
        return Reply(
            text="I'll write the note.",
            chunk_size=8,
            tool_calls=[tool("Write", file_path=str(notes), content=f"note {token}\n")],
        )

    def answer(turn: Turn) -> Reply:
        result = turn.result_of("Write")
        turn.require(not turn.outcomes[0].failed, f"Write failed: {result!r}")
        return Reply(text=f"Wrote notes.txt with note {token}.")

    model = ScriptedModel(marker_for("credits"), [write, answer])

    def intercept(body: dict) -> Reply | None:
        if topped_up.is_set() or not model.is_main_loop(body) or model._step_of(body) < 1:
            return None
        return Reply(status=402, error={"code": 402, "message": INSUFFICIENT_CREDITS})

    model.intercept = intercept
    return Scenario(
        "credits",
        _prompt("credits", "Write a note to notes.txt."),
        model,
        answer=f"Wrote notes.txt with note {token}.",
        files={notes: f"note {token}\n"},
    )


# OpenRouter's words when the account behind the key has no credits left.
INSUFFICIENT_CREDITS = "Insufficient credits. Add more using https://openrouter.ai/settings/credits"


def stream_breaks_once(work: Path, *, after_content: bool) -> Scenario:
    """The first main-loop stream ends in an `error` event: before any content block, or
    half way through the text (what a provider failing mid-answer looks like)."""
    token = secrets.token_hex(4)
    prompt, model = _answer_only("stream-breaks", f"Answer after the broken stream {token}.")
    broken: list[dict] = []

    def intercept(body: dict) -> Reply | None:
        if broken or not model.is_main_loop(body):
            return None
        broken.append(body)
        # The scripted upstream fails after half the text pieces: with one piece, at once.
        text = "This answer will not arrive in one piece." if after_content else "x"
        return Reply(
            text=text,
            mid_stream_error={
                "code": 502,
                "message": "Provider returned error: upstream connection reset",
            },
        )

    model.intercept = intercept
    return Scenario(
        "stream-breaks", prompt, model, answer=f"Answer after the broken stream {token}."
    )


def notebook_edit(work: Path, *, deferred: bool) -> Scenario:
    """Edit a notebook cell found by reading it. With `deferred` (Claude Code 2.1, where
    NotebookEdit is a deferred tool) the model first loads the tool with ToolSearch."""
    notebook = work / "analysis.ipynb"
    start = secrets.randbelow(900) + 100
    # Never all digits: Claude Code reads `cell-<digits>` as a cell index, not an id.
    cell = {
        "cell_type": "code",
        "id": f"cell-ab{secrets.token_hex(2)}",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": [f"threshold = {start}"],
    }
    notebook.write_text(
        json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )

    def search(turn: Turn) -> Reply:
        offered = {t["function"]["name"] for t in turn.body.get("tools") or []}
        turn.require("NotebookEdit" not in offered, "NotebookEdit offered before it was loaded")
        return Reply(tool_calls=[tool("ToolSearch", query="select:NotebookEdit")])

    def read(turn: Turn) -> Reply:
        if deferred:
            loaded = turn.result_of("ToolSearch")
            turn.require("NotebookEdit" in loaded, f"ToolSearch result says nothing: {loaded!r}")
            offered = {t["function"]["name"] for t in turn.body.get("tools") or []}
            turn.require("NotebookEdit" in offered, f"NotebookEdit not offered: {offered}")
        return Reply(tool_calls=[tool("Read", file_path=str(notebook))])

    def edit(turn: Turn) -> Reply:
        seen = turn.result_of("Read")
        cell_id = re.search(r"cell-[0-9a-f]{6}", seen)
        value = re.search(r"threshold = (\d+)", seen)
        if not turn.require(bool(cell_id and value), f"Read result lacks the cell: {seen!r}"):
            return turn.broken()
        return Reply(
            tool_calls=[
                tool(
                    "NotebookEdit",
                    notebook_path=str(notebook),
                    cell_id=cell_id.group(0),
                    edit_mode="replace",
                    new_source=f"threshold = {int(value.group(1)) * 2}",
                )
            ]
        )

    def answer(turn: Turn) -> Reply:
        result = turn.result_of("NotebookEdit")
        turn.require(not turn.outcomes[0].failed, f"NotebookEdit failed: {result!r}")
        return Reply(text=f"Doubled the threshold to {start * 2}.")

    def doubled_on_disk() -> str | None:
        source = "".join(json.loads(notebook.read_text())["cells"][0]["source"])
        return None if source == f"threshold = {start * 2}" else f"cell source is {source!r}"

    steps = [search, read, edit, answer] if deferred else [read, edit, answer]
    model = ScriptedModel(marker_for("notebook"), steps)
    return Scenario(
        "notebook",
        _prompt("notebook", "Double the threshold in analysis.ipynb."),
        model,
        answer=f"Doubled the threshold to {start * 2}.",
        checks=[doubled_on_disk],
    )


def greeting(work: Path) -> Scenario:
    """The shortest session: one answer, no tools (for tests about what comes after it)."""
    token = secrets.token_hex(4)
    prompt, model = _answer_only("greeting", f"Hello from oas {token}.")
    return Scenario("greeting", prompt, model, answer=f"Hello from oas {token}.")
