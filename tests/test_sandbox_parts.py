"""The sandbox's parts that need no process: path confinement, edits, policy, workspaces."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from src.sandbox.files import WorkspaceFiles
from src.sandbox.paths import PathError, PathMap, resolve
from src.sandbox.policy import CommandPolicy, programs_in
from src.sandbox.workspace import ID_PATTERN, WorkspaceStore
from src.tasks.server_tools.code_execution import describe_result


@pytest.fixture
def tree(tmp_path: Path) -> tuple[PathMap, Path, Path]:
    files, tmp = tmp_path / "ws" / "files", tmp_path / "ws" / "tmp"
    files.mkdir(parents=True)
    tmp.mkdir()
    (tmp_path / "secret").write_text("secret\n")
    return PathMap({"/workspace": files, "/tmp": tmp}, "/workspace"), files, tmp


def editor(path_map: PathMap, **limits: int) -> WorkspaceFiles:
    values = {
        "max_output_bytes": 10_000,
        "max_edit_bytes": 100_000,
        "max_file_bytes": 100_000,
        "quota_bytes": 1 << 30,
    }
    values.update(limits)
    return WorkspaceFiles(path_map, run_uid=os.geteuid(), chown_to=None, **values)


# ------------------------------------------------------------------ paths


def test_relative_absolute_and_mapped_paths(tree: tuple[PathMap, Path, Path]) -> None:
    path_map, files, tmp = tree
    (files / "a").mkdir()
    (files / "a" / "b.txt").write_text("x")
    (tmp / "t.txt").write_text("y")
    for text in (
        "a/b.txt",
        "/workspace/a/b.txt",
        "./a/./b.txt",
        "a/../a/b.txt",
        "/workspace//a/b.txt",
        "/tmp/../workspace/a/b.txt",
    ):
        with resolve(path_map, text) as r:
            assert (r.shown, r.exists) == ("/workspace/a/b.txt", True), text
    with resolve(path_map, "/tmp/t.txt") as r:
        assert r.exists and r.shown == "/tmp/t.txt"
    with resolve(path_map, "new.txt") as r:
        assert not r.exists


@pytest.mark.parametrize(
    "text",
    [
        "..",
        "../secret",
        "../../secret",
        "/etc/passwd",
        "/",
        "/workspace/../../secret",
        "/proc/self/environ",
        "/work",
    ],
)
def test_paths_above_or_beside_the_roots_are_outside(
    tree: tuple[PathMap, Path, Path], text: str
) -> None:
    with pytest.raises(PathError) as caught:
        resolve(tree[0], text)
    assert caught.value.code == "invalid_tool_input" and "outside" in caught.value.message


def test_links_are_followed_by_the_sandbox_rules_only(
    tree: tuple[PathMap, Path, Path], tmp_path: Path
) -> None:
    path_map, files, _ = tree
    (files / "real.txt").write_text("in\n")
    os.symlink("real.txt", files / "rel")
    os.symlink("/workspace/real.txt", files / "abs")  # the sandbox's path, not the host's
    os.symlink("/tmp", files / "tmplink")
    os.symlink("/etc/hostname", files / "host")  # not mapped: outside
    os.symlink("../secret", files / "up")
    os.symlink("loop2", files / "loop1")
    os.symlink("loop1", files / "loop2")
    for text, shown in (
        ("rel", "/workspace/real.txt"),
        ("abs", "/workspace/real.txt"),
        ("tmplink/x", "/tmp/x"),
    ):
        with resolve(path_map, text) as r:
            assert r.shown == shown
    for text in ("host", "up"):
        with pytest.raises(PathError, match="outside"):
            resolve(path_map, text)
    with pytest.raises(PathError, match="symbolic links"):
        resolve(path_map, "loop1")


def test_make_parents_creates_directories_inside_only(tree: tuple[PathMap, Path, Path]) -> None:
    path_map, files, _ = tree
    with resolve(path_map, "deep/er/file.txt", make_parents=True) as r:
        assert not r.exists and r.shown == "/workspace/deep/er/file.txt"
    assert (files / "deep" / "er").is_dir()
    with pytest.raises(PathError) as caught:
        resolve(path_map, "missing/file.txt")
    assert caught.value.code == "file_not_found"


def test_file_types_the_editor_will_not_touch(tree: tuple[PathMap, Path, Path]) -> None:
    path_map, files, _ = tree
    os.mkfifo(files / "fifo")  # opening it to read would block forever
    edit = editor(path_map)
    with pytest.raises(PathError, match="not a regular file"):
        edit.view("fifo")
    with pytest.raises(PathError, match="not a regular file"):
        edit.create("fifo", "x")
    (files / "dir").mkdir()
    with pytest.raises(PathError, match="is a directory"):
        edit.create("dir", "x")


# ------------------------------------------------------------------ editing


@pytest.mark.parametrize(
    ("text", "old", "new", "expect"),
    [
        ("a\nb\nc\n", "b", "B", (2, 1, 2, 1, ["-b", "+B"], "a\nB\nc\n")),
        ("a\nb\nc\n", "b\n", "", (2, 1, 2, 0, ["-b"], "a\nc\n")),
        (
            "a\nb\nc\n",
            "a\nb",
            "x\ny\nz",
            (1, 2, 1, 3, ["-a", "-b", "+x", "+y", "+z"], "x\ny\nz\nc\n"),
        ),
        ("one two", "two", "2", (1, 1, 1, 1, ["-one two", "+one 2"], "one 2")),
        ("x = 1\ny = 2", "= 2", "= 3", (2, 1, 2, 1, ["-y = 2", "+y = 3"], "x = 1\ny = 3")),
    ],
)
def test_str_replace_describes_whole_lines(
    tree: tuple[PathMap, Path, Path], text: str, old: str, new: str, expect: tuple
) -> None:
    path_map, files, _ = tree
    (files / "f").write_text(text)
    os.chmod(files / "f", 0o640)
    r = editor(path_map).str_replace("f", old, new)
    assert (r.old_start, r.old_lines, r.new_start, r.new_lines, r.lines) == expect[:5]
    assert (files / "f").read_text() == expect[5]
    assert (files / "f").stat().st_mode & 0o777 == 0o640  # the file keeps its mode


def test_view_ranges_limits_and_binary(tree: tuple[PathMap, Path, Path]) -> None:
    path_map, files, _ = tree
    (files / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    edit = editor(path_map, max_output_bytes=60)
    whole = edit.view("n.txt")
    assert whole.truncated and whole.total_lines == 100 and whole.content.startswith("line 1\n")
    assert whole.num_lines == whole.content.count("\n")
    tail = editor(path_map).view("n.txt", [99, -1])
    assert (tail.content, tail.start_line, tail.num_lines) == ("line 99\nline 100\n", 99, 2)
    for bad in ([0, 5], [5, 2], [101, 102], [1], ["1", "2"]):
        with pytest.raises(PathError):
            editor(path_map).view("n.txt", bad)  # type: ignore[arg-type]
    (files / "big").write_bytes(b"x" * 200_001)
    with pytest.raises(PathError, match="limit"):
        editor(path_map).view("big")
    (files / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    image = editor(path_map).view("p.png")
    assert image.file_type == "image" and image.num_lines is None
    listing = editor(path_map).view("/workspace")
    assert listing.is_dir and "n.txt" in listing.content.splitlines()


def test_create_replaces_the_name_not_the_inode(
    tree: tuple[PathMap, Path, Path], tmp_path: Path
) -> None:
    path_map, files, _ = tree
    other = tmp_path / "other.txt"
    other.write_text("keep\n")
    os.link(other, files / "linked.txt")  # a hard link to a file outside
    created = editor(path_map).create("linked.txt", "new\n")
    assert created.is_file_update
    assert (files / "linked.txt").read_text() == "new\n"
    assert other.read_text() == "keep\n"
    assert not [p for p in files.iterdir() if ".oas-" in p.name]  # no temp file left


# ------------------------------------------------------------------ policy


def test_programs_in_a_command_line() -> None:
    assert programs_in("cd src && FOO=1 python3 -m pytest | tee log; /usr/bin/curl -s x") == [
        "cd",
        "python3",
        "tee",
        "curl",
    ]
    assert programs_in("echo $(wget -q -O- x) `nc -l 1`") == ["echo", "wget", "nc"]
    assert programs_in("sudo rm -rf /; timeout 5 ssh host") == ["sudo", "rm", "timeout", "ssh"]
    assert programs_in("for f in *.py; do black $f; done") == ["black"]
    assert programs_in("cat > a.sh <<'EOF'\ncurl evil\nEOF\nbash a.sh") == ["cat", "bash"]
    assert programs_in("echo 'curl; wget' # curl") == ["echo"]


def test_policy_allow_and_deny() -> None:
    assert CommandPolicy().check("curl x") is None
    deny = CommandPolicy(deny=("curl", "re:--force"))
    assert deny.check("curl x") and deny.check("git push --force")
    assert deny.check("echo curl") is None
    allow = CommandPolicy(allow=("python3",))
    assert allow.check("cd x && python3 a.py") is None  # builtins are always allowed
    assert allow.check("python3 a.py | grep x")


# ------------------------------------------------------------------ workspaces


def test_workspace_ids_expiry_and_sweep(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path / "ws", ttl=100, owner=None)
    first, second = store.create(), store.create()
    assert ID_PATTERN.match(first.id) and first.id != second.id
    assert (tmp_path / "ws").stat().st_mode & 0o777 == 0o700
    assert store.get(first.id) is not None and store.count() == 2
    for bad in ("../ws", first.id + "/..", "container_x", "", "container_" + "a" * 65):
        assert store.get(bad) is None
    # a workspace used recently outlives one that was not
    first.last_used_at -= 150
    store._write_meta(first)
    assert store.get(first.id) is None  # expired: gone on lookup
    assert not first.path.exists()
    (tmp_path / "ws" / f"{second.id}.json").write_text("{not json")
    assert store.sweep() == 1 and store.count() == 0


def test_sweep_spares_leased_and_removes_unwritable_leftovers(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path / "ws", ttl=10, owner=None)
    kept, dropped = store.create(), store.create()
    locked = dropped.files_dir / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "f").write_text("x")
    locked.chmod(0)  # a command may leave this behind
    with store.lease(kept):
        assert store.sweep(now=time.time() + 60) == 1
        assert kept.path.exists() and not dropped.path.exists()
    assert store.sweep(now=time.time() + 60) == 1


def test_container_field_shape(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path / "ws", ttl=3600, owner=None)
    workspace = store.create()
    container = workspace.container()
    assert container["id"] == workspace.id
    assert container["expires_at"].endswith("Z") and "T" in container["expires_at"]
    meta = json.loads((tmp_path / "ws" / f"{workspace.id}.json").read_text())
    assert meta["id"] == workspace.id


# ------------------------------------------------------------------ what the model reads


def test_describe_result_for_the_model() -> None:
    assert (
        describe_result(
            {
                "type": "bash_code_execution_result",
                "stdout": "hi\n",
                "stderr": "",
                "return_code": 0,
                "content": [],
            }
        )
        == "exit code: 0\nstdout:\nhi"
    )
    view = describe_result(
        {
            "type": "text_editor_code_execution_view_result",
            "file_type": "text",
            "content": "a\nb\n",
            "num_lines": 2,
            "start_line": 9,
            "total_lines": 10,
        }
    )
    assert view == "lines 9-10 of 10:\n     9\ta\n    10\tb"
    assert (
        describe_result(
            {
                "type": "text_editor_code_execution_tool_result_error",
                "error_code": "file_not_found",
                "error_message": "x: no such file",
            }
        )
        == "Error: file_not_found: x: no such file"
    )


def test_what_is_covered_inside_the_shown_paths(tmp_path: Path) -> None:
    from src.sandbox.hidden import cover

    area = tmp_path / "area"
    (area / "data" / "pg").mkdir(parents=True)
    (area / "tools").mkdir()
    (area / "tools" / "svc.sock").touch()
    (area / "data" / "pg" / "pg.sock").touch()
    (tmp_path / "elsewhere.sock").touch()
    (tmp_path / "link").symlink_to(area)  # the operator shows the area by another name
    shown = [str(tmp_path / "link"), "/usr"]
    sockets = [
        str(area / "tools" / "svc.sock"),
        str(area / "data" / "pg" / "pg.sock"),
        str(tmp_path / "elsewhere.sock"),
    ]
    # shown through a symlink: the link is shown as a link, nothing of the area in it
    assert cover(shown, [str(area / "data")], sockets).dirs == ()
    # shown inside a directory reached through a symlink: mapped to where it appears
    (tmp_path / "via").symlink_to(tmp_path)
    shown = [str(tmp_path / "via" / "area"), "/usr"]
    hidden = cover(shown, [str(area / "data"), str(tmp_path / "not-shown")], sockets)
    assert hidden.dirs == (str(tmp_path / "via" / "area" / "data"),)
    # the data dir's socket is under a covered directory; the other one gets /dev/null
    assert hidden.files == (str(tmp_path / "via" / "area" / "tools" / "svc.sock"),)
