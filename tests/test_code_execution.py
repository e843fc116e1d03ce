"""The code execution tool as a model uses it, under every isolation tier this host has.

Each test drives the kind's `run()` with the calls a model makes (the messages loop does
nothing more), and reads the blocks a client would get. Tiers that do not work here are
skipped with the reason (CI without bubblewrap runs `namespaces` and `rlimits`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from anthropic.types.beta import (
    BetaBashCodeExecutionToolResultBlock,
    BetaCodeExecutionToolResultBlock,
    BetaTextEditorCodeExecutionToolResultBlock,
)

from src.core.errors import AnthropicError
from src.core.settings import Settings
from src.sandbox import SandboxConfig, service_for
from src.tasks.server_tools import build_toolbox
from tests.support import code_execution as shared
from tests.support.code_execution import (
    TIERS,
    Model,
    error_code,
    request,
    result,
    settings_for,
)

root, tier = shared.root, shared.tier  # the fixtures every sandbox test module uses

SENTINEL = "sk-or-v1-SANDBOX-SENTINEL-7f3a9c"


@pytest.fixture
def settings(root: Path, tier: str) -> Settings:
    return settings_for(root, tier)


def sandbox_path(model: Model, name: str) -> str:
    """Where a workspace file is, as the sandbox names it."""
    tool = model.toolbox.tools[0]
    isolation = tool.service.isolation()  # type: ignore[attr-defined]
    return f"{isolation.workdir(tool.workspace)}/{name}"  # type: ignore[attr-defined]


# ------------------------------------------------------------------ a session


async def test_write_run_edit_view_then_continue_in_a_second_request(settings: Settings) -> None:
    model = Model.start(settings)
    assert model.toolbox.names() == {"bash_code_execution", "text_editor_code_execution"}
    assert model.container() is None  # nothing ran yet: no container

    created = await model.edit(
        command="create",
        path="app.py",
        file_text="def greet(name):\n    return 'Hello, ' + name\n\nprint(greet('world'))\n",
    )
    assert result(created) == {
        "type": "text_editor_code_execution_create_result",
        "is_file_update": False,
    }

    ran = result(await model.bash("python3 app.py"))
    assert (ran["stdout"], ran["stderr"], ran["return_code"]) == ("Hello, world\n", "", 0)

    edited = result(
        await model.edit(
            command="str_replace",
            path=sandbox_path(model, "app.py"),
            old_str="'Hello, '",
            new_str="'Goodbye, '",
        )
    )
    assert edited == {
        "type": "text_editor_code_execution_str_replace_result",
        "old_start": 2,
        "old_lines": 1,
        "new_start": 2,
        "new_lines": 1,
        "lines": ["-    return 'Hello, ' + name", "+    return 'Goodbye, ' + name"],
    }

    viewed = result(await model.edit(command="view", path="app.py", view_range=[2, 2]))
    assert viewed == {
        "type": "text_editor_code_execution_view_result",
        "file_type": "text",
        "content": "    return 'Goodbye, ' + name\n",
        "num_lines": 1,
        "start_line": 2,
        "total_lines": 4,
    }
    assert result(await model.bash("python3 app.py"))["stdout"] == "Goodbye, world\n"

    first = model.container()
    assert first is not None and first["id"].startswith("container_")
    assert first["expires_at"].endswith("Z")
    await model.close()

    # a later request names the container: same files, and the model carries on
    later = Model.start(settings, container=first["id"])
    assert later.container() == {"id": first["id"], "expires_at": first["expires_at"]}
    listing = result(await later.edit(command="view", path="."))
    assert "app.py" in listing["content"].splitlines()
    recreated = result(
        await later.edit(command="create", path="app.py", file_text="print('third')\n")
    )
    assert recreated["is_file_update"] is True
    assert result(await later.bash("python3 app.py && ls"))["stdout"] == "third\napp.py\n"
    again = later.container()
    assert again is not None and again["id"] == first["id"]
    assert again["expires_at"] > first["expires_at"]  # each use pushes expiry back
    await later.close()

    # and the object form of the parameter works too
    third = Model.start(settings, container={"id": first["id"]})
    assert result(await third.bash("cat app.py"))["stdout"] == "print('third')\n"
    await third.close()


async def test_blocks_parse_as_the_anthropic_sdk_types(settings: Settings) -> None:
    model = Model.start(settings)
    blocks = [
        await model.edit(command="create", path="a.txt", file_text="one\ntwo\n"),
        await model.edit(command="view", path="a.txt"),
        await model.edit(command="str_replace", path="a.txt", old_str="two", new_str="2"),
        await model.edit(command="view", path="missing.txt"),
        await model.bash("echo out; echo err >&2; exit 3"),
        await model.bash(""),
    ]
    for block in blocks:
        cls = (
            BetaBashCodeExecutionToolResultBlock
            if block["type"].startswith("bash")
            else BetaTextEditorCodeExecutionToolResultBlock
        )
        parsed = cls.model_validate(block)
        assert parsed.content.type == block["content"]["type"]
    assert error_code(blocks[3]) == "file_not_found"
    assert result(blocks[4])["return_code"] == 3
    assert result(blocks[4])["stderr"] == "err\n"
    assert error_code(blocks[5]) == "invalid_tool_input"
    await model.close()


async def test_the_older_python_version(settings: Settings) -> None:
    model = Model.start(settings, tool_type="code_execution_20250522")
    assert model.toolbox.names() == {"code_execution"}
    outcome = await model.call(
        "code_execution",
        {"code": "import sys\nprint(sum(range(10)))\nprint('oops', file=sys.stderr)"},
    )
    block = outcome.blocks[0]
    BetaCodeExecutionToolResultBlock.model_validate(block)
    assert block["content"] == {
        "type": "code_execution_result",
        "stdout": "45\n",
        "stderr": "oops\n",
        "return_code": 0,
        "content": [],
    }
    assert "45" in outcome.for_model
    flood = await model.call("code_execution", {"code": "print('x' * 10_000_000)"})
    content = flood.blocks[0]["content"]  # no output_file_too_large in this version: cut
    assert content["type"] == "code_execution_result"
    assert len(content["stdout"]) <= 100_000 and "truncated" in content["stderr"]
    await model.close()


# ------------------------------------------------------------------ escapes


async def test_paths_outside_the_workspace_are_refused(root: Path, settings: Settings) -> None:
    secret = root / "secret.txt"  # next to the workspaces, readable by the sandbox uid
    secret.write_text("top secret\n")
    secret.chmod(0o644)
    outside_dir = root / "outside"
    outside_dir.mkdir(exist_ok=True)
    outside_dir.chmod(0o777)
    model = Model.start(settings)
    await model.bash("mkdir sub")  # (and make the workspace)

    # outside in every tier's view
    for path in (
        "../secret.txt",
        "../../../secret.txt",
        "../../../../../../../etc/passwd",
        "/etc/passwd",
        "/",
        "/root/.bashrc",
        "sub/../../x",
        "./sub/../..",
    ):
        block = await model.edit(command="view", path=path)
        assert error_code(block) == "invalid_tool_input", path
        assert "outside the workspace" in block["content"]["error_message"]
    for path in ("../escaped.txt", "/etc/oas-escaped", "/usr/oas-escaped"):
        block = await model.edit(command="create", path=path, file_text="x")
        assert error_code(block) == "invalid_tool_input", path

    # links made inside the sandbox that point out: absolute, relative, chained, to dirs
    made = await model.bash(
        "ln -s /etc/passwd etcpw && ln -s ../../../secret.txt rel && "
        "ln -s /etc etcdir && ln -s / top && ln -s rel chain && "
        f"ln -s {secret} abs && ln -s {outside_dir} dir"
    )
    assert result(made)["return_code"] == 0
    for path in ("etcpw", "rel", "chain", "top/etc/passwd", "etcdir/hostname"):
        block = await model.edit(command="view", path=path)
        assert error_code(block) == "invalid_tool_input", path
    for path in ("etcpw", "rel", "etcdir/escaped", "top/etc/escaped"):
        block = await model.edit(command="create", path=path, file_text="pwned")
        assert error_code(block) == "invalid_tool_input", path
        block = await model.edit(command="str_replace", path=path, old_str="root", new_str="x")
        assert error_code(block) in ("invalid_tool_input", "file_not_found"), path

    # the host's own paths: in the namespace tiers /tmp/... is the sandbox's /tmp, so these
    # may name (missing) files inside the workspace; never the host's files
    for path in (str(secret), "abs", "dir/escaped.txt"):
        viewed = await model.edit(command="view", path=path)
        assert "top secret" not in str(viewed), path
        await model.edit(command="create", path=path, file_text="pwned")
        await model.edit(command="str_replace", path=path, old_str="top", new_str="x")
    assert secret.read_text() == "top secret\n"
    assert list(outside_dir.iterdir()) == []
    assert not Path("/etc/oas-escaped").exists() and not Path("/usr/oas-escaped").exists()

    # links that stay inside are followed, as a shell would
    await model.edit(command="create", path="real/data.txt", file_text="inside\n")
    assert (
        result(await model.bash("ln -s real/data.txt inner && ln -s real alias"))["return_code"]
        == 0
    )
    assert result(await model.edit(command="view", path="inner"))["content"] == "inside\n"
    assert (
        result(await model.edit(command="view", path="alias/../real/data.txt"))["content"]
        == "inside\n"
    )
    await model.close()


async def test_a_hard_link_to_a_file_of_another_user_is_not_read(
    settings: Settings, tier: str
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can own a file the sandbox user does not")
    model = Model.start(settings)
    await model.bash("true")
    workspace = model.toolbox.tools[0].workspace  # type: ignore[attr-defined]
    target = workspace.files_dir / "rootfile"
    target.write_text("root only\n")  # owned by root, as a hard link would be
    assert error_code(await model.edit(command="view", path="rootfile")) == "invalid_tool_input"
    # create replaces the name, it never writes through it
    assert result(await model.edit(command="create", path="rootfile", file_text="mine\n"))
    assert target.stat().st_uid == settings.code_execution_uid
    await model.close()


# ------------------------------------------------------------------ limits


async def test_a_runaway_command_is_stopped(root: Path, tier: str) -> None:
    model = Model.start(settings_for(root, tier, code_execution_timeout=2.0))
    assert error_code(await model.bash("while true; do :; done")) == "execution_time_exceeded"
    assert error_code(await model.bash("echo started; sleep 600")) == "execution_time_exceeded"
    outcome = await model.call("bash_code_execution", {"command": "echo partial; sleep 600"})
    assert "partial" in outcome.for_model and "time limit" in outcome.for_model
    assert result(await model.bash("echo still here"))["stdout"] == "still here\n"
    await model.close()


def _running(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


async def test_a_fork_bomb_is_contained(root: Path, tier: str) -> None:
    settings = settings_for(root, tier, code_execution_timeout=4.0, code_execution_max_processes=16)
    model = Model.start(settings)
    # bounded even if nothing contained it: at most 200 forks, each sleeping a while
    counted = result(
        await model.bash(
            'python3 -c "import os, time\n'
            "n = 0\n"
            "for _ in range(200):\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError:\n"
            "        break\n"
            "    if pid == 0:\n"
            "        time.sleep(30.25)\n"
            "        os._exit(0)\n"
            "    n += 1\n"
            'print(n)"'
        )
    )
    # rlimits counts every process of the uid on the host, which come and go meanwhile
    bound = 16 if tier != "rlimits" or os.geteuid() == 0 else 24
    assert 0 < int(counted["stdout"]) < bound
    # the classic, made finite (depth 9: at most 1023 shells) and marked so we can look
    block = await model.bash(
        "b() { [ $1 -gt 0 ] && { b $(($1-1)) & b $(($1-1)) & }; sleep 31.75; }; b 9"
    )
    assert block["content"]["type"] in (
        "bash_code_execution_tool_result_error",
        "bash_code_execution_result",
    )
    if block["content"]["type"].endswith("error"):
        assert error_code(block) == "execution_time_exceeded"
    # nothing of either is left running, and the sandbox still answers
    assert _running("sleep 31.75") == []
    assert _running("30.25") == []
    assert result(await model.bash("echo alive"))["stdout"] == "alive\n"
    await model.close()


async def test_huge_output_is_capped(root: Path, tier: str) -> None:
    model = Model.start(settings_for(root, tier, code_execution_max_output_bytes=50_000))
    outcome = await model.call("bash_code_execution", {"command": "yes oas | head -c 500000000"})
    assert error_code(outcome.blocks[0]) == "output_file_too_large"
    assert "oas\noas" in outcome.for_model and len(outcome.for_model) < 5_000
    # right at the limit is fine
    fits = result(await model.bash("head -c 49000 /dev/zero | tr '\\0' a"))
    assert len(fits["stdout"]) == 49000
    await model.close()


async def test_memory_file_size_and_cpu_limits(root: Path, tier: str) -> None:
    settings = settings_for(root, tier, code_execution_memory_mb=256, code_execution_max_file_mb=1)
    model = Model.start(settings)
    big = result(await model.bash("python3 -c 'x = bytearray(1024 ** 3)'"))
    assert big["return_code"] != 0 and "MemoryError" in big["stderr"]
    file_limited = result(
        await model.bash("head -c 5000000 /dev/zero > big.bin; echo $?; stat -c %s big.bin")
    )
    code, size = file_limited["stdout"].split()
    assert code != "0" and int(size) <= 1024 * 1024
    limits = result(await model.bash("ulimit -t; ulimit -u"))["stdout"].split()
    assert int(limits[0]) <= 17 and limits[1] != "unlimited"
    await model.close()


# ------------------------------------------------------------------ environment


async def test_no_secret_of_oas_reaches_the_sandbox(
    root: Path, tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", SENTINEL)
    monkeypatch.setenv("OAS_API_KEYS", SENTINEL)
    monkeypatch.setenv("PREFECT_API_KEY", SENTINEL)
    settings = settings_for(root, tier)
    assert settings.upstream_key == SENTINEL  # oas itself has it
    model = Model.start(settings)
    env = result(await model.bash("env"))["stdout"]
    assert SENTINEL not in env
    names = {line.split("=", 1)[0] for line in env.splitlines() if "=" in line}
    assert not {n for n in names if n.startswith(("OAS_", "PREFECT_", "OPENROUTER", "ANTHROPIC"))}
    assert names <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "PWD",
        "LANG",
        "LC_ALL",
        "TERM",
        "SHELL",
        "USER",
        "LOGNAME",
        "PYTHONUNBUFFERED",
        "SHLVL",
        "_",
        "OLDPWD",
    }

    # a process started with the key in its environment, as `oas serve` may be
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={**os.environ, "OPENROUTER_API_KEY": SENTINEL},
    )
    try:
        found = result(
            await model.bash(
                "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c SANDBOX-SENTINEL"
            )
        )
    finally:
        holder.kill()
        holder.wait()
    if tier == "rlimits" and os.geteuid() != 0:
        pytest.skip(
            "documented weakness: without namespaces, a command can read the "
            "environment of other processes of the same user"
        )
    assert found["stdout"].strip() == "0"
    await model.close()


async def test_no_network_unless_configured(root: Path, tier: str) -> None:
    if tier == "rlimits":
        pytest.skip("the rlimits tier cannot confine the network (reported in its status)")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = (
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3);"
            " print('connected')\""
        )
        closed = Model.start(settings_for(root, tier))
        blocked = result(await closed.bash(probe))
        assert blocked["return_code"] != 0 and "connected" not in blocked["stdout"]
        await closed.close()
        opened = Model.start(settings_for(root, tier, code_execution_network=True))
        assert result(await opened.bash(probe))["stdout"] == "connected\n"
        await opened.close()


# ------------------------------------------------------------------ policy and input


async def test_command_policy(root: Path, tier: str) -> None:
    model = Model.start(settings_for(root, tier, code_execution_deny=["curl", "re:rm\\s+-rf"]))
    denied = await model.call("bash_code_execution", {"command": "ls && curl http://example.com"})
    assert error_code(denied.blocks[0]) == "invalid_tool_input"
    assert "curl" in denied.for_model
    assert error_code(await model.bash("rm -rf /workspace")) == "invalid_tool_input"
    assert result(await model.bash("echo curl is just a word"))["return_code"] == 0
    await model.close()

    allow = Model.start(settings_for(root, tier, code_execution_allow=["python3", "ls"]))
    assert result(await allow.bash("cd . && python3 -c 'print(1)' && ls"))["stdout"] == "1\n"
    assert error_code(await allow.bash("cat /etc/hostname")) == "invalid_tool_input"
    await allow.close()


async def test_bad_input_gets_an_error_block(settings: Settings) -> None:
    model = Model.start(settings)
    cases = [
        ("bash_code_execution", {}, "invalid_tool_input"),
        ("bash_code_execution", {"command": 42}, "invalid_tool_input"),
        ("bash_code_execution", {"command": "x" * 200_000}, "invalid_tool_input"),
        ("text_editor_code_execution", {"command": "delete", "path": "a"}, "invalid_tool_input"),
        ("text_editor_code_execution", {"command": "view"}, "invalid_tool_input"),
        ("text_editor_code_execution", {"command": "view", "path": "nope.py"}, "file_not_found"),
        ("text_editor_code_execution", {"command": "create", "path": "a"}, "invalid_tool_input"),
        (
            "text_editor_code_execution",
            {"command": "str_replace", "path": "nope", "old_str": "a", "new_str": "b"},
            "file_not_found",
        ),
        ("text_editor_code_execution", {"command": "view", "path": "a\0b"}, "invalid_tool_input"),
    ]
    for name, arguments, code in cases:
        outcome = await model.call(name, arguments)
        assert outcome.is_error and error_code(outcome.blocks[0]) == code, arguments
    await model.edit(command="create", path="twice.txt", file_text="a\na\n")
    block = await model.edit(command="str_replace", path="twice.txt", old_str="a", new_str="b")
    assert "2 times" in block["content"]["error_message"]
    block = await model.edit(command="view", path="twice.txt", view_range=[5, 9])
    assert error_code(block) == "invalid_tool_input"
    await model.close()


# ------------------------------------------------------------------ containers


async def test_unknown_or_expired_container_is_a_400(root: Path, tier: str) -> None:
    settings = settings_for(root, tier)
    for container in ("container_doesnotexist0123456789", "../../etc", "x" * 500):
        with pytest.raises(AnthropicError) as caught:
            build_toolbox(request(container=container), settings)
        assert caught.value.status == 400 and "not found" in caught.value.message

    short = settings_for(
        root, tier, code_execution_ttl=0.5, code_execution_dir=root / f"{tier}-expiry"
    )
    model = Model.start(short)
    await model.bash("echo hi > keep.txt")
    container = model.container()
    assert container is not None
    await model.close()
    service = service_for(SandboxConfig.from_settings(short))
    workspace = service.store.get(container["id"])
    assert workspace is not None
    assert service.store.sweep(now=workspace.expires_at + 1) == 1
    assert not workspace.path.exists()
    with pytest.raises(AnthropicError):
        build_toolbox(request(container=container["id"]), short)


async def test_a_workspace_in_use_is_not_swept(root: Path, tier: str) -> None:
    settings = settings_for(
        root, tier, code_execution_ttl=0.5, code_execution_dir=root / f"{tier}-in-use"
    )
    model = Model.start(settings)
    await model.bash("echo hi > keep.txt")
    tool = model.toolbox.tools[0]
    service, workspace = tool.service, tool.workspace  # type: ignore[attr-defined]
    assert service.store.sweep(now=workspace.expires_at + 60) == 0
    assert result(await model.bash("cat keep.txt"))["stdout"] == "hi\n"
    await model.close()
    assert service.store.sweep(now=workspace.expires_at + 60) == 1


def test_off_by_default(root: Path) -> None:
    settings = Settings(_env_file=None, data_dir=root / "off")  # type: ignore[call-arg]
    assert settings.code_execution is False
    assert not build_toolbox(request(), settings)


def test_auto_picks_the_strongest_tier_that_works(root: Path) -> None:
    service = service_for(SandboxConfig.from_settings(settings_for(root, "auto")))
    status = service.status()
    working = []
    for name in TIERS:
        candidate = service_for(SandboxConfig.from_settings(settings_for(root, name)))
        if candidate.isolation() is not None:
            working.append(name)
    if working[0] == "rlimits":  # confines nothing: auto does not settle for it
        assert status["available"] is False and "rlimits" in status["skipped"]
        return
    assert status["isolation"]["tier"] == working[0]
    assert set(status["skipped"]) == set(TIERS[: TIERS.index(working[0])])


async def test_no_working_sandbox_answers_unavailable(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("src.sandbox.isolation.shutil.which", lambda name: None)
    settings = settings_for(root, "bubblewrap", code_execution_dir=root / "no-bwrap")
    model = Model.start(settings)  # the tool is still offered: the model learns why not
    outcome = await model.call("bash_code_execution", {"command": "echo hi"})
    assert error_code(outcome.blocks[0]) == "unavailable" and outcome.is_error
    assert error_code(await model.edit(command="view", path="x")) == "unavailable"
    assert model.container() is None
    status = service_for(SandboxConfig.from_settings(settings)).status()
    assert status["available"] is False and "bubblewrap" in status["skipped"]
    await model.close()


async def test_each_operation_is_a_task_of_the_run(settings: Settings) -> None:
    from src.tracking.run import Run, current_run

    run = Run("messages", "test", {})
    token = current_run.set(run)
    try:
        model = Model.start(settings)
        await model.edit(command="create", path="t.py", file_text="print(1)\n")
        await model.bash("python3 t.py")
        await model.edit(command="str_replace", path="t.py", old_str="1", new_str="2")
        await model.edit(command="view", path="t.py")
        await model.bash("sleep 1 && exit 4")
        await model.close()
    finally:
        current_run.reset(token)
    assert [t.name for t in run.tasks] == [
        "file-create",
        "bash-exec",
        "str-replace",
        "file-view",
        "bash-exec",
    ]
    assert {t.state for t in run.tasks} == {"COMPLETED"}  # a failing command is an answer
    assert "code-execution" in run.tags
    assert run.summary["container"].startswith("container_")
    assert run.summary["sandbox"] == settings.code_execution_isolation


async def test_a_cancelled_request_takes_its_command_with_it(settings: Settings) -> None:
    import asyncio

    model = Model.start(settings)
    await model.bash("true")
    running = asyncio.create_task(model.bash("sleep 33.25 & sleep 33.5; echo never"))
    for _ in range(100):  # bounded: wait until both sleeps show up
        if _running("sleep 33.5") and _running("sleep 33.25"):
            break
        await asyncio.sleep(0.05)
    assert _running("sleep 33.5")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    for _ in range(100):
        if not _running("sleep 33.5") and not _running("sleep 33.25"):
            break
        await asyncio.sleep(0.05)
    assert _running("sleep 33.5") == [] and _running("sleep 33.25") == []
    assert result(await model.bash("echo next"))["stdout"] == "next\n"
    await model.close()
