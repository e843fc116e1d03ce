"""Code execution through `oas`: the scripted upstream plays a model that writes a Python
file, runs it and edits it in one workspace, then a second request continues in it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from src.sandbox.disk import unavailable
from src.sandbox.hidden import host_sockets
from tests.support.code_execution import workspace_root
from tests.support.upstream import Reply, ToolCall

pytestmark = pytest.mark.e2e

TOOL = {"type": "code_execution_20250825", "name": "code_execution"}
BETAS = ["code-execution-2025-08-25"]


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with workspace_root() as path:
        yield path


@pytest.fixture
def sandbox_oas(make_oas, root, tmp_path):
    return make_oas(
        code_execution=True, code_execution_dir=root / tmp_path.name, code_execution_timeout=15.0
    )


def _edit(**arguments: str) -> ToolCall:
    return ToolCall("text_editor_code_execution", arguments)


def _bash(command: str) -> ToolCall:
    return ToolCall("bash_code_execution", {"command": command})


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as client:
        try:
            client.connect(path)
        except OSError:
            return False
    return True


def _ask(client, stream: bool, **kwargs):
    params = dict(model="claude-sonnet-4-5", max_tokens=500, betas=BETAS, tools=[TOOL], **kwargs)
    if not stream:
        return client.beta.messages.create(**params)
    with client.beta.messages.stream(**params) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_write_run_edit_and_continue_in_the_same_container(sandbox_oas, upstream, stream):
    upstream.queue(
        Reply(tool_calls=[_edit(command="create", path="app.py", file_text="print(6 * 7)\n")]),
        Reply(tool_calls=[_bash("python3 app.py")]),
        Reply(
            tool_calls=[
                _edit(command="str_replace", path="app.py", old_str="6 * 7", new_str="6 * 9")
            ]
        ),
        Reply(tool_calls=[_bash("python3 app.py")]),
        Reply(text="It printed 42, then 54."),
    )
    message = _ask(
        sandbox_oas.client(),
        stream,
        messages=[{"role": "user", "content": "Write and run a script."}],
    )

    kinds = [b.type for b in message.content]
    assert kinds == [
        "server_tool_use",
        "text_editor_code_execution_tool_result",
        "server_tool_use",
        "bash_code_execution_tool_result",
        "server_tool_use",
        "text_editor_code_execution_tool_result",
        "server_tool_use",
        "bash_code_execution_tool_result",
        "text",
    ]
    runs = [b.content for b in message.content if b.type == "bash_code_execution_tool_result"]
    assert [(r.stdout, r.return_code) for r in runs] == [("42\n", 0), ("54\n", 0)]
    assert message.content[-1].text == "It printed 42, then 54."
    assert message.container is not None and message.container.id.startswith("container_")
    # the model read each result before its next step
    fed_back = [m for m in upstream.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(fed_back) == 4 and "42" in str(fed_back[1]["content"])

    upstream.queue(
        Reply(tool_calls=[_edit(command="view", path="app.py")]),
        Reply(text="The script multiplies 6 by 9."),
    )
    later = _ask(
        sandbox_oas.client(),
        stream,
        container=message.container.id,
        messages=[{"role": "user", "content": "What does app.py do now?"}],
    )
    view = next(b for b in later.content if b.type == "text_editor_code_execution_tool_result")
    assert "print(6 * 9)" in view.content.content
    assert later.container.id == message.container.id


def test_a_runaway_command_is_an_error_block_not_a_500(make_oas, upstream, root, tmp_path):
    oas = make_oas(
        code_execution=True, code_execution_dir=root / tmp_path.name, code_execution_timeout=1.0
    )
    upstream.queue(Reply(tool_calls=[_bash("sleep 30")]), Reply(text="That took too long."))
    message = _ask(oas.client(), False, messages=[{"role": "user", "content": "wait"}])
    result = next(b for b in message.content if b.type == "bash_code_execution_tool_result")
    assert result.content.type == "bash_code_execution_tool_result_error"
    assert result.content.error_code == "execution_time_exceeded"
    assert message.content[-1].text == "That took too long."


def test_code_execution_is_off_unless_configured(oas, upstream):
    upstream.queue(Reply(text="I cannot run code here."))
    message = _ask(oas.client(), False, messages=[{"role": "user", "content": "run ls"}])
    assert message.content[0].text == "I cannot run code here."
    offered = [t["function"]["name"] for t in upstream.requests[-1].get("tools", [])]
    assert "bash_code_execution" not in offered


def test_a_models_bash_reaches_no_socket_or_port_of_oas(
    make_oas, upstream, root, tmp_path, prefect_api
):
    """The red team's finding 1: a model's bash call connected to the embedded PostgreSQL's
    unix socket and to the Prefect API. Against a real Prefect with its embedded PostgreSQL."""
    prefect_port = urlsplit(prefect_api).port
    # from the host, both answer (the test Prefect's PostgreSQL, and any other on this host)
    postgres = [p for p in host_sockets() if "/.s.PGSQL." in p and _answers(p)]
    assert postgres, "the test Prefect's PostgreSQL listens on a unix socket"
    socket.create_connection(("127.0.0.1", prefect_port), 3).close()

    oas = make_oas(
        code_execution=True,
        code_execution_dir=root / tmp_path.name,
        code_execution_timeout=15.0,
        tracking=True,
        prefect_api_url=prefect_api,
    )
    connect_pg = (
        'python3 -c "import socket, sys; s = socket.socket(socket.AF_UNIX); '
        f"s.connect(sys.argv[1]); print('connected')\" {postgres[0]}"
    )
    upstream.queue(
        Reply(tool_calls=[_bash(connect_pg)]),
        Reply(
            tool_calls=[_bash(f"echo GET > /dev/tcp/127.0.0.1/{prefect_port} && echo connected")]
        ),
        Reply(tool_calls=[_bash(f"ls -A {Path(postgres[0]).parent} {oas.settings.data_dir}")]),
        Reply(text="Nothing there."),
    )
    message = _ask(oas.client(), False, messages=[{"role": "user", "content": "look around"}])
    runs = [b.content for b in message.content if b.type == "bash_code_execution_tool_result"]
    assert len(runs) == 3
    for run in runs:
        assert run.return_code != 0 and "connected" not in run.stdout, run
    assert ".s.PGSQL" not in runs[2].stdout


def test_a_models_bash_cannot_fill_the_disk_or_the_memory(make_oas, upstream, root, tmp_path):
    """The red team's findings 3 and 4, through `oas`: 14 x 99 MB of `fallocate` in one
    call, and four processes that together take more than the memory limit."""
    oas = make_oas(
        code_execution=True,
        code_execution_dir=root / tmp_path.name,
        code_execution_timeout=20.0,
        code_execution_workspace_mb=20,
        code_execution_memory_mb=256,
    )
    upstream.queue(
        Reply(
            tool_calls=[
                _bash("for i in $(seq 14); do fallocate -l 99M f$i; done; du -sm . | cut -f1")
            ]
        ),
        Reply(
            tool_calls=[
                _bash(
                    "for i in 1 2 3 4; do head -c 19000000 /dev/zero > w$i & "
                    "done; wait; sleep 5; du -sm . | cut -f1; echo finished"
                )
            ]
        ),
        Reply(
            tool_calls=[
                _bash(
                    "rm -f w*; for i in 1 2 3 4; do python3 -c 'import time; "
                    'x = b"a" * (120 << 20); time.sleep(10)\' & done; wait; '
                    "echo finished"
                )
            ]
        ),
        Reply(text="The sandbox stopped me."),
    )
    message = _ask(oas.client(), False, messages=[{"role": "user", "content": "fill it"}])
    runs = [b.content for b in message.content if b.type == "bash_code_execution_tool_result"]
    fallocated, written, allocated = runs
    assert int(fallocated.stdout) <= 2 and "not supported" in fallocated.stderr
    assert "20 MB quota" in written.stderr
    if unavailable(root / "mount-probe") is None:  # the workspace is a file system of 20 MB
        assert "No space left" in written.stderr and int(written.stdout.split()[0]) <= 20
    else:  # the watchdog stopped the writers
        assert "finished" not in written.stdout
    assert "finished" not in allocated.stdout and "256 MB of memory" in allocated.stderr
    assert allocated.return_code == 137
    # the model read why
    fed_back = [m for m in upstream.requests[-1]["messages"] if m["role"] == "tool"]
    assert "256 MB of memory" in str(fed_back[-1]["content"])
