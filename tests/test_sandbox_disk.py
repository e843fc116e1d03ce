"""A workspace that is its own file system: the kernel holds the quota (issue 16).

The red team's parallel writers again: eight processes of one command, each writing 10 MB
into a 20 MB workspace. Under the watchdog alone they ended at 29-73 MB; with the
workspace an ext4 file system of the quota's size they end at the quota, in every tier.
These tests need what mounting needs (root, a loop device, mkfs.ext4): without it they
skip and say which is missing; the watchdog's own tests are in test_sandbox_attacks.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from src.sandbox import SandboxConfig, SandboxService, service_for
from src.sandbox.disk import DiskError, Disks, mounts_under
from src.sandbox.files import WorkspaceFiles
from src.sandbox.paths import PathError, PathMap
from tests.support import code_execution as shared
from tests.support.code_execution import TIERS, Model, result, settings_for

root, tier = shared.root, shared.tier  # the fixtures every sandbox test module uses

MB = 1024 * 1024
PARALLEL_WRITERS = (
    # four python writers and four dd writers, 10 MB each, all at once
    "for i in 1 2 3 4; do python3 -c 'import sys\n"
    'with open(sys.argv[1], "wb") as f:\n'
    '    for _ in range(10): f.write(b"a" * (1 << 20))\' p$i.bin 2>/dev/null & done; '
    "for i in 1 2 3 4; do dd if=/dev/zero of=d$i.bin bs=1M count=10 status=none & done; "
    "wait; fallocate -l 99M f.bin; du -sm . | cut -f1; echo finished"
)


def mounting(settings: object) -> SandboxService:
    """The service for these settings, or a skip saying why workspaces cannot be mounted."""
    service = service_for(SandboxConfig.from_settings(settings))  # type: ignore[arg-type]
    if service.isolation() is None:
        pytest.skip(f"no isolation tier works here: {service.status()['skipped']}")
    if service.disk_fallback is not None:
        pytest.skip(
            "a workspace cannot be a file system of its own here (needs root, a loop device "
            f"and mkfs.ext4): {service.disk_fallback}"
        )
    return service


def any_tier(root: Path) -> str:
    for name in TIERS:
        if service_for(SandboxConfig.from_settings(settings_for(root, name))).isolation():
            return name
    pytest.skip("no isolation tier works on this host")


def image_blocks(service: SandboxService, workspace_id: str) -> int:
    """Bytes the workspace's image takes on the host's disk."""
    return os.stat(service.store.disks.image(workspace_id)).st_blocks * 512


async def test_parallel_writers_stop_at_the_workspace_quota(root: Path, tier: str) -> None:
    settings = settings_for(
        root, tier, code_execution_dir=root / f"{tier}-disk", code_execution_workspace_mb=20
    )
    service = mounting(settings)
    model = Model.start(settings)
    outcome = await model.call("bash_code_execution", {"command": PARALLEL_WRITERS})
    block = result(outcome.blocks[0])
    used, finished = block["stdout"].split()
    assert int(used) <= 20 and finished == "finished"  # not stopped: the writers were refused
    assert "No space left on device" in block["stderr"]
    assert "20 MB quota" in block["stderr"] and "20 MB quota" in outcome.for_model
    workspace_id = model.container()["id"]  # type: ignore[index]
    assert image_blocks(service, workspace_id) <= 21 * MB
    # the workspace still works: clean up, write again
    again = result(await model.bash("rm -f *.bin; head -c 5000000 /dev/zero > ok.bin; du -sm ."))
    assert again["stderr"] == "" and int(again["stdout"].split()[0]) in (4, 5)
    await model.close()


async def test_the_total_is_reserved_by_each_workspace(root: Path) -> None:
    settings = settings_for(
        root,
        any_tier(root),
        code_execution_dir=root / "reserved",
        code_execution_workspace_mb=20,
        code_execution_total_disk_mb=50,
    )
    service = mounting(settings)
    first, second = Model.start(settings), Model.start(settings)
    for model in (first, second):  # each filled by parallel writers: 20 MB at most
        assert int(result(await model.bash(PARALLEL_WRITERS))["stdout"].split()[0]) <= 20
    ids = [m.container()["id"] for m in (first, second)]  # type: ignore[index]
    assert sum(image_blocks(service, i) for i in ids) <= 42 * MB
    # a third would make 60 MB of 50: refused, saying why
    third = Model.start(settings)
    refused = await third.call("bash_code_execution", {"command": "echo hi"})
    assert refused.blocks[0]["content"]["error_code"] == "unavailable"
    assert "50 MB limit" in refused.for_model and third.container() is None
    # the first container deleted: its file system is unmounted, its reservation freed
    await first.close()
    service.store.delete(ids[0])
    assert not os.path.ismount(root / "reserved" / ids[0])
    assert not service.store.disks.image(ids[0]).exists()
    assert result(await third.bash("echo hi"))["stdout"] == "hi\n"
    for model in (second, third):
        await model.close()


async def test_files_survive_between_commands_and_a_restart(root: Path) -> None:
    settings = settings_for(root, any_tier(root), code_execution_dir=root / "kept")
    service = mounting(settings)
    model = Model.start(settings)
    await model.bash("mkdir -p src && echo 'print(42)' > src/app.py")
    assert result(await model.bash("python3 src/app.py"))["stdout"] == "42\n"
    container = model.container()
    assert container is not None
    await model.close()
    # oas shuts down: the workspace's file system is unmounted, its image kept
    service.close()
    path = root / "kept" / container["id"]
    assert not os.path.ismount(path) and service.store.disks.image(container["id"]).exists()
    # the next request that names the container finds its files (mounted again)
    later = Model.start(settings, container=container["id"])
    assert result(await later.bash("python3 src/app.py"))["stdout"] == "42\n"
    assert os.path.ismount(path)
    await later.close()


async def test_expiry_unmounts_and_removes_the_file_system(root: Path) -> None:
    settings = settings_for(root, any_tier(root), code_execution_dir=root / "expiring")
    service = mounting(settings)
    model = Model.start(settings)
    await model.bash("echo data > kept.txt")
    container = model.container()
    assert container is not None
    await model.close()
    workspace = service.store.get(container["id"])
    assert workspace is not None and service.store.mounted(workspace)
    assert service.store.sweep(now=workspace.expires_at + 1) == 1
    assert mounts_under(root / "expiring") == []
    assert not service.store.disks.image(container["id"]).exists()
    assert not workspace.path.exists()


async def test_what_a_killed_oas_left_is_taken_over_or_removed(root: Path) -> None:
    settings = settings_for(root, any_tier(root), code_execution_dir=root / "killed")
    config = SandboxConfig.from_settings(settings)
    mounting(settings)
    model = Model.start(settings)
    await model.bash("echo still here > note.txt")
    live = model.container()["id"]  # type: ignore[index]
    await model.close()
    stale = Model.start(settings)
    await stale.bash("true")
    expired = stale.container()["id"]  # type: ignore[index]
    await stale.close()
    meta = root / "killed" / f"{expired}.json"
    meta.write_text(json.dumps({"id": expired, "created_at": 0.0, "last_used_at": 0.0}))
    orphan = root / "killed" / ".disks" / "container_ORPHANxxxxxxxxxxxxxxxxxxxxxxxxxxx.img"
    orphan.write_bytes(b"")
    # oas was killed (nothing unmounted); a new one starts on the same directory
    restarted = SandboxService(config)
    assert restarted.isolation() is not None
    assert [p.name for p in mounts_under(root / "killed")] == [live]
    assert not orphan.exists() and not restarted.store.disks.image(expired).exists()
    workspace = restarted.store.get(live)
    assert workspace is not None
    assert (workspace.files_dir / "note.txt").read_text() == "still here\n"


async def test_without_mounting_the_watchdog_holds_and_says_so(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host where mounting is refused (an unprivileged container): simulated by making
    the mount probe fail, as it would there."""
    reason = "mount: permission denied (simulated: an unprivileged container)"
    monkeypatch.setattr("src.sandbox.disk.unavailable", lambda area: reason)
    settings = settings_for(
        root,
        any_tier(root),
        code_execution_dir=root / "unprivileged",
        code_execution_workspace_mb=20,
    )
    service = service_for(SandboxConfig.from_settings(settings))
    status = service.status()
    assert status["workspaces"]["own_file_systems"] is False
    assert "watchdog" in status["isolation"]["disk_quota"]
    assert reason in status["isolation"]["disk_quota"]
    model = Model.start(settings)
    one = result(await model.bash("head -c 50000000 /dev/zero > one.bin; du -sm . | cut -f1"))
    assert "File size limit" in one["stderr"] or "File too large" in one["stderr"]
    assert int(one["stdout"]) <= 21
    workspace = model.toolbox.tools[0].workspace  # type: ignore[attr-defined]
    assert not service.store.mounted(workspace)
    await model.close()


def test_the_editor_reports_a_full_workspace_as_its_quota(root: Path) -> None:
    mounting(settings_for(root, any_tier(root)))
    point = root / "full"
    point.mkdir()
    disks = Disks(root / "full-disks")
    disks.workspaces.mkdir()
    disks.create("container_FULLxxxxxxxxxxxxxxxx", 4 * MB, point)
    files = point / "files"
    files.mkdir()
    with pytest.raises(OSError), open(files / "filler", "wb", buffering=0) as filler:
        while True:  # a block at a time: full to the last one
            filler.write(b"a" * 1024)
    editor = WorkspaceFiles(
        PathMap({"/workspace": files}, "/workspace"),
        run_uid=os.geteuid(),
        chown_to=None,
        max_output_bytes=10_000,
        max_edit_bytes=MB,
        max_file_bytes=MB,
        quota_bytes=4 * MB,
    )
    for path in ("note.txt", "deep/er/note.txt"):  # a file; a file in new directories
        with pytest.raises(PathError) as refused:
            editor.create(path, "x" * 100_000)
        assert "at its 4 MB quota" in refused.value.message
    assert sorted(os.listdir(files)) == ["filler"]  # no temporary file left behind
    disks.remove("container_FULLxxxxxxxxxxxxxxxx", point)


async def test_a_workspace_whose_file_system_cannot_be_made_is_watched(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mounting works here, but not for this one (the host ran out of loop devices, say)."""
    settings = settings_for(
        root, any_tier(root), code_execution_dir=root / "no-loop", code_execution_workspace_mb=20
    )
    service = mounting(settings)

    def no_loop_device(self: Disks, workspace_id: str, size: int, point: Path) -> None:
        raise DiskError("mount: failed to setup loop device (simulated)")

    monkeypatch.setattr(Disks, "create", no_loop_device)
    model = Model.start(settings)
    one = result(await model.bash("head -c 50000000 /dev/zero > one.bin; du -sm . | cut -f1"))
    assert "File size limit" in one["stderr"] or "File too large" in one["stderr"]
    assert int(one["stdout"]) <= 21
    assert not service.store.mounted(model.toolbox.tools[0].workspace)  # type: ignore[attr-defined]
    await model.close()
