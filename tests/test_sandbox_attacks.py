"""The red team's attacks on the sandbox (issue 16), replayed as a model's bash calls.

Each test runs the command the red team ran, in every isolation tier this host has (a tier
that does not work here is skipped, with why), and shows that it holds. docs/14's table of
what each tier enforces is what these tests measure.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from src.sandbox import SandboxConfig, service_for
from tests.support import code_execution as shared
from tests.support.code_execution import (
    Model,
    result,
    settings_for,
)

root, tier = shared.root, shared.tier  # the fixtures every sandbox test module uses

MB = 1024 * 1024


class Listeners:
    """What oas, its PostgreSQL and its Prefect look like from the host: a unix socket in
    the data dir, another beside it, an abstract one and a loopback TCP port, each
    answering `oas` to whoever connects."""

    def __init__(self, data_dir: Path, beside: Path) -> None:
        (data_dir / "pg").mkdir(parents=True, exist_ok=True)
        beside.mkdir(parents=True, exist_ok=True)
        (data_dir / "secret.txt").write_text("the upstream key\n")
        self.data_socket = data_dir / "pg" / ".s.PGSQL.5432"
        self.other_socket = beside / "service.sock"
        self.abstract = f"oas-test-{os.getpid()}-{id(self)}"
        self.servers = [
            self._unix(str(self.data_socket)),
            self._unix(str(self.other_socket)),
            self._unix("\0" + self.abstract),
        ]
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        self.port = tcp.getsockname()[1]
        self.servers.append(tcp)
        for server in self.servers:
            threading.Thread(target=self._answer, args=(server,), daemon=True).start()
        for path in (data_dir, data_dir / "pg", beside):  # reachable by the sandbox uid
            path.chmod(0o755)
        for path in (self.data_socket, self.other_socket):
            path.chmod(0o777)

    @staticmethod
    def _unix(address: str) -> socket.socket:
        server = socket.socket(socket.AF_UNIX)
        server.bind(address)
        server.listen()
        return server

    @staticmethod
    def _answer(server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"oas\n")

    def close(self) -> None:
        for server in self.servers:
            server.close()


def _connect_unix(address: str) -> str:
    return (
        'python3 -c "import socket, sys; s = socket.socket(socket.AF_UNIX); '
        f"s.connect(sys.argv[1].replace('@', chr(0), 1)); print(s.recv(9))\" '{address}'"
    )


async def test_no_socket_file_or_port_of_oas_is_reachable(root: Path, tier: str) -> None:
    if tier == "rlimits":
        pytest.skip(
            "the rlimits tier confines no file, socket or port (documented; oas uses "
            "it only when OAS_CODE_EXECUTION_ISOLATION=rlimits says so)"
        )
    # not under /tmp, which every tier replaces with the workspace's own
    area = Path(tempfile.mkdtemp(prefix=f"oas-{tier}-host-", dir="/var/tmp"))
    area.chmod(0o755)
    data_dir = area / "data"
    listeners = Listeners(data_dir, area / "run")
    # the operator shows the sandbox the whole area read-only, data dir included
    settings = settings_for(
        root,
        tier,
        data_dir=data_dir,
        code_execution_dir=root / f"{tier}-hosted",
        code_execution_readonly_paths=["/usr", "/bin", "/lib", "/lib64", "/etc", str(area)],
    )
    model = Model.start(settings)
    try:
        assert result(await model.bash(f"ls {area}"))["stdout"].split() == ["data", "run"]
        attacks = {
            "the data dir's socket": _connect_unix(str(listeners.data_socket)),
            "a socket beside it": _connect_unix(str(listeners.other_socket)),
            "an abstract socket": _connect_unix("@" + listeners.abstract),
            "a loopback port (bash)": f"echo hi > /dev/tcp/127.0.0.1/{listeners.port}",
            "a loopback port (python)": (
                'python3 -c "import socket; print(socket.create_connection('
                f"('127.0.0.1', {listeners.port}), 3).recv(9))\""
            ),
            "the data dir's files": f"cat {data_dir}/secret.txt",
        }
        for what, command in attacks.items():
            block = result(await model.bash(command))
            assert block["return_code"] != 0, (what, block)
            assert "oas" not in block["stdout"] and "upstream key" not in block["stdout"], what
        listing = result(await model.bash(f"ls -A {data_dir}; ls -A /run /tmp 2>&1"))
        assert "secret" not in listing["stdout"] and "pg" not in listing["stdout"]
    finally:
        await model.close()
        listeners.close()
        shutil.rmtree(area, ignore_errors=True)


def test_the_listeners_answer_outside_the_sandbox(root: Path) -> None:
    """The control: without the sandbox, every one of them answers."""
    listeners = Listeners(root / "control" / "data", root / "control" / "run")
    try:
        for address in (
            str(listeners.data_socket),
            str(listeners.other_socket),
            "\0" + listeners.abstract,
        ):
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(address)
                assert client.recv(9) == b"oas\n"
        with socket.create_connection(("127.0.0.1", listeners.port), 3) as client:
            assert client.recv(9) == b"oas\n"
    finally:
        listeners.close()


async def test_nested_user_namespaces_are_refused(root: Path, tier: str) -> None:
    model = Model.start(settings_for(root, tier))
    unshared = result(await model.bash("unshare -U -r id -u; echo exit=$?"))
    assert "exit=0" not in unshared["stdout"], unshared
    python = result(
        await model.bash("python3 -c 'import os; os.unshare(os.CLONE_NEWUSER); print(\"inside\")'")
    )
    assert python["return_code"] != 0 and "inside" not in python["stdout"]
    # threads (clone3 refused, glibc falls back to clone) and forks still work
    assert (
        result(
            await model.bash(
                'python3 -c \'import threading; t = threading.Thread(target=print, args=("t",)); '
                "t.start(); t.join()' && (echo forked)"
            )
        )["stdout"]
        == "t\nforked\n"
    )
    await model.close()


def _used_mb(block: dict[str, object]) -> int:
    return int(str(block["stdout"]).split()[0])


async def test_fallocate_cannot_fill_the_disk(root: Path, tier: str) -> None:
    model = Model.start(settings_for(root, tier, code_execution_workspace_mb=20))
    # the red team's command: 14 x 99 MB in one call (1.4 GB against a 20 MB quota)
    block = result(await model.bash("for i in $(seq 14); do fallocate -l 99M f$i; done; du -sm ."))
    assert _used_mb(block) <= 20 + 4
    assert "Operation not supported" in block["stderr"]
    await model.close()


async def test_the_watchdog_stops_writers_at_the_workspace_quota(root: Path, tier: str) -> None:
    """Where a workspace cannot be a file system of its own (or the operator says so)."""
    model = Model.start(
        settings_for(
            root,
            tier,
            code_execution_dir=root / f"{tier}-watched",
            code_execution_workspace_mb=20,
            code_execution_disk_quota="watchdog",
        )
    )
    # one writer: its file cannot grow past what is left of the quota
    one = result(await model.bash("head -c 200000000 /dev/zero > one.bin; du -sm ."))
    assert _used_mb(one) <= 21
    assert result(await model.bash("rm one.bin; du -sm ."))["stdout"].startswith("1")
    # four writers at once (each file within the quota, together past it): stopped
    outcome = await model.call(
        "bash_code_execution",
        {
            "command": (
                "for i in 1 2 3 4; do head -c 19000000 /dev/zero > w$i.bin & done; wait; "
                "sleep 5; echo finished"
            )
        },
    )
    block = result(outcome.blocks[0])
    assert "finished" not in block["stdout"] and block["return_code"] == 137
    assert "20 MB quota" in block["stderr"] and "20 MB quota" in outcome.for_model
    used = _used_mb(result(await model.bash("du -sm .")))
    assert used <= 20 + 60  # four writers: one interval of their writing past the quota
    # the workspace still works, and cleaning up is allowed while over the quota
    assert _used_mb(result(await model.bash("rm -f w*.bin; du -sm ."))) <= 1
    await model.close()


async def test_the_watchdog_holds_the_total_over_all_workspaces(root: Path, tier: str) -> None:
    settings = settings_for(
        root,
        tier,
        code_execution_dir=root / f"{tier}-total",
        code_execution_workspace_mb=30,
        code_execution_total_disk_mb=40,
        code_execution_disk_quota="watchdog",
    )
    first, second = Model.start(settings), Model.start(settings)
    assert _used_mb(result(await first.bash("head -c 25000000 /dev/zero > a.bin; du -sm ."))) >= 23
    # one file: held to what the total leaves (40 - 24 MB)
    one = result(await second.bash("head -c 25000000 /dev/zero > b.bin; du -sm ."))
    assert "File size limit" in one["stderr"] or "File too large" in one["stderr"]
    assert _used_mb(one) <= 40 - 23
    assert result(await second.bash("rm b.bin"))["return_code"] == 0
    # two files at once, each within what is left, together past it: stopped
    outcome = await second.call(
        "bash_code_execution",
        {
            "command": (
                "for i in 1 2; do head -c 15000000 /dev/zero > b$i.bin & done; wait; "
                "sleep 5; echo finished"
            )
        },
    )
    block = result(outcome.blocks[0])
    assert "finished" not in block["stdout"] and "40 MB limit" in block["stderr"]
    used = _used_mb(result(await second.bash("du -sm .")))
    assert used <= 30  # two writers: one interval of their writing past the total
    # the text editor is held to the total too (the first workspace has room of its own)
    refused = await first.edit(command="create", path="more.txt", file_text="x" * 2_000_000)
    assert refused["content"]["error_code"] == "invalid_tool_input"
    assert "40 MB limit" in refused["content"]["error_message"]
    service = service_for(SandboxConfig.from_settings(settings))
    assert 40 * MB < service.total_usage() <= 55 * MB
    await first.close()
    await second.close()


async def test_processes_together_stay_within_the_memory_limit(root: Path, tier: str) -> None:
    model = Model.start(settings_for(root, tier, code_execution_memory_mb=256))
    # four processes of 120 MB each: every one is within the limit, together 480 MB
    outcome = await model.call(
        "bash_code_execution",
        {
            "command": (
                'for i in 1 2 3 4; do python3 -c \'import time; x = b"a" * (120 << 20); '
                "time.sleep(10)' & done; wait; echo finished"
            )
        },
    )
    block = result(outcome.blocks[0])
    assert "finished" not in block["stdout"] and block["return_code"] == 137
    assert "256 MB of memory" in block["stderr"] and "256 MB of memory" in outcome.for_model
    # one process within the limit is left alone
    alone = result(await model.bash("python3 -c 'x = b\"a\" * (120 << 20); print(len(x) >> 20)'"))
    assert alone["stdout"] == "120\n"
    await model.close()


async def test_status_says_what_the_tier_enforces(root: Path, tier: str) -> None:
    status = service_for(SandboxConfig.from_settings(settings_for(root, tier))).status()
    enforced = status["isolation"]
    assert enforced["tier"] == tier
    for aspect in (
        "network",
        "sockets",
        "disk_quota",
        "memory_total",
        "pids",
        "nested_user_namespaces",
    ):
        assert enforced[aspect], aspect
    assert enforced["nested_user_namespaces"] == "refused (seccomp)"
    assert bool(status["does_not_protect"]) == (tier == "rlimits")


def test_auto_does_not_settle_for_rlimits(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host where only the rlimits tier works: code execution stays off unless asked."""
    monkeypatch.setattr("src.sandbox.isolation.shutil.which", lambda name: None)
    real_probe = __import__("src.sandbox.isolation", fromlist=["probe"]).probe

    def no_namespaces(isolation, workspace):  # type: ignore[no-untyped-def]
        if isolation.tier == "namespaces":
            return "unshare: Operation not permitted"
        return real_probe(isolation, workspace)

    monkeypatch.setattr("src.sandbox.service.probe", no_namespaces)
    auto = service_for(
        SandboxConfig.from_settings(
            settings_for(root, "auto", code_execution_dir=root / "only-rlimits")
        )
    )
    status = auto.status()
    assert status["available"] is False
    assert "OAS_CODE_EXECUTION_ISOLATION=rlimits" in status["skipped"]["rlimits"]
    explicit = service_for(
        SandboxConfig.from_settings(
            settings_for(root, "rlimits", code_execution_dir=root / "only-rlimits")
        )
    )
    status = explicit.status()
    assert status["available"] is True and status["isolation"]["tier"] == "rlimits"
    assert any("socket" in item for item in status["does_not_protect"])


async def test_memory_files_count_toward_the_memory_limit(root: Path, tier: str) -> None:
    """`memfd_create` memory is mapped by nobody, so no resident count shows it (each memory
    file is held to RLIMIT_FSIZE like any file; ten of them are not)."""
    model = Model.start(settings_for(root, tier, code_execution_memory_mb=256))
    outcome = await model.call(
        "bash_code_execution",
        {
            "command": (
                "python3 -c 'import os, time\n"
                'fds = [os.memfd_create("x") for _ in range(10)]\n'
                "for fd in fds:\n"
                '    for _ in range(60): os.write(fd, b"a" * (1 << 20))\n'
                'print("wrote"); time.sleep(10)\'; echo finished'
            )
        },
    )
    block = result(outcome.blocks[0])
    assert "finished" not in block["stdout"] and "256 MB of memory" in block["stderr"]
    await model.close()


async def test_shared_memory_is_small(root: Path, tier: str) -> None:
    """/dev/shm is memory no process's resident count shows: its own, small one."""
    if tier == "rlimits":
        pytest.skip("the rlimits tier uses the host's /dev/shm (documented)")
    model = Model.start(settings_for(root, tier))
    block = result(
        await model.bash("head -c 200000000 /dev/zero > /dev/shm/fill; du -sm /dev/shm | cut -f1")
    )
    assert "No space left" in block["stderr"] and int(block["stdout"]) <= 64
    await model.close()
