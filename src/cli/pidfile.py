"""Where a running `oas serve` leaves its process id: how `oas config reload` finds it.

One file per listening port under `OAS_DATA_DIR/run/`, private to the user, removed when
the server stops; a file whose process is gone is ignored (and removed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def pid_path(data_dir: Path, port: int) -> Path:
    return data_dir / "run" / f"oas-{port}.pid"


def write_pid(data_dir: Path, port: int) -> Path:
    path = pid_path(data_dir, port)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(str(os.getpid()))
    return path


def remove_pid(path: Path) -> None:
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def running_servers(data_dir: Path) -> Iterator[tuple[int, int]]:
    """(pid, port) of each `oas serve` that is still running."""
    for path in sorted((data_dir / "run").glob("oas-*.pid")):
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        yield pid, int(path.stem.removeprefix("oas-"))
