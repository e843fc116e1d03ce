"""What a sandbox must not see, even inside the host paths it is shown read-only.

A read-only bind does not stop `connect()` on a unix socket inside it: the kernel checks
only the socket file's permission bits. So whatever the operator lists in
`OAS_CODE_EXECUTION_READONLY_PATHS`, the bubblewrap and namespaces tiers cover:

- directories with an empty tmpfs: the data directory (the embedded PostgreSQL's socket,
  the payload store, logs), the workspaces, Prefect's home, and `/tmp`, `/var/tmp`, `/run`,
  `/var/run`, `/dev/shm` (where services keep their sockets);
- every other unix socket of the host that falls inside a shown path (as listed in
  `/proc/net/unix` when the command starts) with `/dev/null`.

Only what lies inside a shown path needs covering: the rest of the host is not in the
sandbox at all. Abstract unix sockets (`@name`) belong to the network namespace, which the
sandbox does not share unless `OAS_CODE_EXECUTION_NETWORK` is on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

#: covered whatever the configuration
SYSTEM_HIDDEN = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")


@dataclass(frozen=True, slots=True)
class Cover:
    """Mounts that hide host paths: empty tmpfs over `dirs`, /dev/null over `files`."""

    dirs: tuple[str, ...]
    files: tuple[str, ...]


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def host_sockets() -> list[str]:
    """Paths of the host's listening or bound unix sockets (best effort)."""
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as source:
            lines = source.read().splitlines()[1:]
    except OSError:
        return []
    paths = []
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[7].startswith("/"):
            paths.append(fields[7])
    return paths


def _places(path: str, shown: list[str]) -> list[str]:
    """Where the host's real path `path` appears in the sandbox: under each shown path
    (itself not a symlink: those are shown as links) whose real path holds it."""
    places = []
    for place in shown:
        if os.path.islink(place):
            continue
        real = os.path.realpath(place)
        if _inside(path, real) and path != real:
            places.append(place + path[len(real) :])
    return places


def cover(
    shown: Iterable[str], hidden: Iterable[str], sockets: Iterable[str] | None = None
) -> Cover:
    """What to mount over, as paths in the sandbox, given the host paths shown and the ones
    that must be hidden. Host paths are taken as real paths, and mapped through the shown
    paths' real paths: a mount on a path through a symlink would land where it points."""
    shown = [os.path.normpath(p) for p in shown]
    dirs: list[str] = []
    for path in sorted({os.path.realpath(p) for p in hidden}):
        if os.path.isdir(path):
            dirs.extend(_places(path, shown))
    dirs = [d for d in sorted(set(dirs)) if not any(_inside(d, o) and d != o for o in dirs)]
    files: list[str] = []
    for path in sorted(
        {os.path.realpath(p) for p in (host_sockets() if sockets is None else sockets)}
    ):
        if os.path.exists(path):
            files.extend(f for f in _places(path, shown) if not any(_inside(f, d) for d in dirs))
    return Cover(tuple(dirs), tuple(sorted(set(files))))
