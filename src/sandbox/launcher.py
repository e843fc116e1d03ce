"""The first program of a sandboxed command when bubblewrap is not used.

Run as `python -I -S launcher.py CONFIG_FD`: the configuration is JSON read from that
descriptor (a memfd, so no argument-length limit and nothing in `ps`), the workspace is an
open directory descriptor named in it. It imports only the standard library (nothing of
oas, no site packages): it runs between `fork` and the command, so it must be small, and
what it does must be easy to audit.

Two modes:

- `namespaces`: new user, mount, pid, ipc, uts (and, unless network is allowed, net)
  namespaces; a fresh root on a tmpfs holding only read-only binds of the configured host
  paths, a private `/dev`, a new `/proc`, the workspace at `/workspace` and its own `/tmp`;
  the old root is detached. Inside, a reaper is pid 1 and the command runs as an unmapped
  user with no capabilities, so when it ends everything it started ends too.
- `rlimits`: only resource limits, a dropped uid when oas runs as root, and the workspace
  as working directory. The weakest tier; oas reports it as such.

In both, the limits are set last, in the process that becomes the command, and
`no_new_privs` keeps setuid programs (sudo, su) from gaining anything. Setup errors are
written to the status descriptor (close-on-exec, so silence means the command started).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# statvfs flag -> mount flag: a read-only remount must keep the flags the kernel locked
_LOCKED_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}

_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_DEVICES = ("null", "zero", "full", "random", "urandom")

INNER_ID = 1000  # the uid/gid the command has inside the namespaces

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    def enc(v):
        return v.encode() if v is not None else None

    _call(
        _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount {target}",
    )


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _drop_to(uid: int | None, gid: int | None) -> None:
    if uid is None or gid is None:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # a uid change makes the process non-dumpable, which leaves /proc/self owned by root
    # and the namespace maps unwritable; it is still only this launcher
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def count_processes(uid: int) -> int:
    """Processes of `uid` now (its RLIMIT_NPROC counts them across namespaces)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _apply_limits(limits: dict[str, int], nproc_relative: bool) -> None:
    nproc = limits["nproc"]
    if nproc_relative:
        # RLIMIT_NPROC counts every process of this uid on the host: allow N more, this
        # process (which becomes the command) being the first of them
        nproc += count_processes(os.getuid()) - 1
    for name, value in (
        ("RLIMIT_CORE", 0),
        ("RLIMIT_CPU", limits["cpu"]),
        ("RLIMIT_AS", limits["as"]),
        ("RLIMIT_FSIZE", limits["fsize"]),
        ("RLIMIT_NOFILE", limits["nofile"]),
        ("RLIMIT_NPROC", nproc),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _harden(filter_hex: str | None) -> None:
    """no_new_privs, then the seccomp filter oas built (src/sandbox/seccomp.py)."""
    _call(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if filter_hex:
        program = bytes.fromhex(filter_hex)
        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
        _call(
            _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp"
        )


def _exec(cfg: dict) -> None:
    """execve, searching PATH by hand: after pivot_root no module can be imported any more
    (os.execvpe imports one), as the interpreter's library is not in the new root."""
    argv, env = cfg["argv"], cfg["env"]
    program = argv[0]
    if "/" not in program:
        for directory in env.get("PATH", "/usr/bin:/bin").split(":"):
            candidate = f"{directory}/{program}"
            if os.access(candidate, os.X_OK):
                program = candidate
                break
    os.execve(program, argv, env)


def _exit_code(status: int) -> int:
    """A shell's convention: the exit status, or 128 + the signal that ended it."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 1


# ---------------------------------------------------------------- rlimits


def run_rlimits(cfg: dict) -> None:
    os.fchdir(cfg["workspace_fd"])
    os.close(cfg["workspace_fd"])
    _drop_to(cfg.get("drop_uid"), cfg.get("drop_gid"))
    os.chdir("files")
    # set after the uid change, which clears it
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _apply_limits(cfg["limits"], nproc_relative=True)
    _harden(cfg.get("seccomp"))
    _exec(cfg)


# ---------------------------------------------------------------- namespaces


def _ro_remount(target: str) -> None:
    current = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st_flag, ms_flag in _LOCKED_FLAGS.items():
        if current & st_flag:
            flags |= ms_flag
    _mount(None, target, None, flags)


def _build_root(cfg: dict) -> str:
    """A new root on a tmpfs: read-only host paths, /dev, /proc, /workspace, /tmp."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    base = "/tmp"
    _mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    root = f"{base}/root"
    os.mkdir(root, 0o755)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")

    bound: list[str] = []
    for path in sorted(cfg["readonly"]):
        if any(path == b or path.startswith(b + "/") for b in bound):
            continue
        if not os.path.lexists(path):
            continue
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(path):
            os.symlink(os.readlink(path), target)
            continue
        if not os.path.isdir(path):
            continue
        os.mkdir(target)
        _mount(path, target, None, MS_BIND | MS_REC)
        _ro_remount(target)
        bound.append(path)

    # what oas keeps inside the shown paths (its data, sockets): see src/sandbox/hidden.py
    for path in cfg.get("hide_dirs", ()):
        _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m")
    for path in cfg.get("hide_files", ()):
        _mount("/dev/null", root + path, None, MS_BIND)

    dev = root + "/dev"
    os.mkdir(dev)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in _DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "w").close()
            _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/shm", 0o1777)

    os.mkdir(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)

    # the working directory is the workspace (entered by descriptor before unshare, so
    # its ancestors need not be reachable by the sandbox uid; a descriptor opened before
    # unshare cannot be a bind source, the working directory moved with the namespace)
    for name, source in (("workspace", "files"), ("tmp", "tmp")):
        os.mkdir(f"{root}/{name}")
        _mount(source, f"{root}/{name}", None, MS_BIND)
    return root


def _pivot(root: str) -> None:
    os.chdir(root)
    os.mkdir(".oldroot")
    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SetupError(f"pivot_root: unknown machine {platform.machine()}")
    _call(_libc.syscall(number, b".", b".oldroot"), "pivot_root")
    os.chdir("/")
    _call(_libc.umount2(b"/.oldroot", MNT_DETACH), "umount old root")
    os.rmdir("/.oldroot")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _drop_bounding_set() -> None:
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break


def run_namespaces(cfg: dict, status_fd: int) -> None:
    os.fchdir(cfg["workspace_fd"])
    os.close(cfg["workspace_fd"])
    _drop_to(cfg.get("drop_uid"), cfg.get("drop_gid"))
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # oas gone: so is the sandbox
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if not cfg["network"]:
        flags |= CLONE_NEWNET
    _call(_libc.unshare(flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{INNER_ID} {uid} 1")
    _write("/proc/self/gid_map", f"{INNER_ID} {gid} 1")

    init = os.fork()
    if init:
        # outside: wait for the namespace's pid 1 and hand its status up
        os.close(status_fd)
        while True:
            try:
                _, status = os.waitpid(init, 0)
                break
            except InterruptedError:
                continue
        os._exit(_exit_code(status))

    # pid 1 of the new pid namespace
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    root = _build_root(cfg)
    _pivot(root)
    _call(_libc.sethostname(b"sandbox", 7), "sethostname")
    os.chdir(cfg["workdir"])
    command = os.fork()
    if command == 0:
        _drop_bounding_set()
        _apply_limits(cfg["limits"], nproc_relative=cfg["nproc_relative"])
        _harden(cfg.get("seccomp"))
        _exec(cfg)  # as an unmapped-root uid: execve clears every capability
    os.close(status_fd)
    # reap everything; leave (taking the namespace down) when the command ends
    code = 1
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == command:
            code = _exit_code(status)
            break
    os._exit(code)


def main() -> None:
    with os.fdopen(int(sys.argv[1]), "rb") as source:
        cfg = json.loads(source.read())
    status_fd = cfg["status_fd"]
    os.set_inheritable(status_fd, False)
    try:
        if cfg["mode"] == "namespaces":
            run_namespaces(cfg, status_fd)
        else:
            run_rlimits(cfg)
    except BaseException as exc:
        try:
            os.write(status_fd, f"{type(exc).__name__}: {exc}".encode()[:2000])
        finally:
            os._exit(125)


if __name__ == "__main__":
    main()
