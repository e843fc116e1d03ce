"""Install pinned Claude Code releases from npm and run them headless against `oas`.

Releases are installed once into a cache directory (`OAS_CLAUDE_CODE_CACHE`, default
`~/.cache/oas-tests/claude-code/<version>`) that later runs reuse, so a fresh CI machine
pays the download once. Up to 2.0 a release is `cli.js` run with node; from 2.1 the
package is a thin wrapper whose postinstall copies a native binary out of a platform
package (`@anthropic-ai/claude-code-linux-x64`, ...). We install with `--ignore-scripts`
and run that platform binary directly, so nothing depends on npm running install scripts.

Each run gets its own HOME and working directory, a dummy key, and the environment that
keeps Claude Code from phoning home (telemetry, error reports, auto-update, feedback
surveys): only the loopback `oas` is ever contacted. Every run has a hard timeout and its
whole process group is killed when it expires, so a hang fails a test, never the suite.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Pinned releases: the last 1.0.x, the last 2.0.x, and the newest 2.1.x on npm that passes
# (checked with `make claude-code-latest`). Bump deliberately; each bump is a new capture of
# what the CLI sends.
PINNED = ("1.0.128", "2.0.77", "2.1.332")
# `OAS_CLAUDE_CODE_VERSIONS=2.1.400` (comma-separated) runs the suite against other releases
# (`make claude-code-latest` sets it to the newest on npm).
VERSIONS = (
    tuple(v for v in os.environ.get("OAS_CLAUDE_CODE_VERSIONS", "").split(",") if v) or PINNED
)

PACKAGE = "@anthropic-ai/claude-code"
INSTALL_TIMEOUT = 600.0
DEFAULT_RUN_TIMEOUT = 120.0

# What a dummy Claude Code must not do on a test machine (all documented settings).
QUIET_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_COST_WARNINGS": "1",
    "DISABLE_INSTALLATION_CHECKS": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
    "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1",
    # Also keeps it from fetching feature flags, release notes and the like from the internet.
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "IS_SANDBOX": "1",  # root may use --permission-mode bypassPermissions
    "USE_BUILTIN_RIPGREP": "1",
}


def cache_root() -> Path:
    configured = os.environ.get("OAS_CLAUDE_CODE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "oas-tests" / "claude-code"


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("-")[0].split("."))


def _platform_package() -> str:
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}[
        platform.machine().lower()
    ]
    musl = Path("/lib").glob("ld-musl-*")
    return f"{PACKAGE}-linux-{machine}" + ("-musl" if any(musl) else "")


def _command_in(prefix: Path, version: str) -> list[str]:
    """How to start the release installed under `prefix` (raises if it is not there)."""
    modules = prefix / "node_modules"
    if version_tuple(version) >= (2, 1):
        binary = modules / _platform_package() / "claude"
        if not binary.is_file():
            raise FileNotFoundError(f"{binary} missing: npm did not install the platform package")
        return [str(binary)]
    cli = modules / PACKAGE / "cli.js"
    if not cli.is_file():
        raise FileNotFoundError(f"{cli} missing")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH; Claude Code before 2.1 needs it")
    return [node, str(cli)]


def install(version: str) -> list[str]:
    """The command that runs this release, installing it into the cache first if needed.

    Safe against concurrent test processes (a file lock) and interrupted installs (the
    release is installed beside its final place and renamed when it reports its version).
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    prefix = root / version
    with open(root / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (prefix / ".installed").exists():
            return _command_in(prefix, version)
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "npm is not on PATH; it installs the Claude Code releases under test"
            )
        staging = root / f".{version}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)
        staging.mkdir()
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(staging),
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--no-save",
                "--loglevel=error",
                f"{PACKAGE}@{version}",
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm install {PACKAGE}@{version} failed:\n{result.stderr[-3000:]}")
        command = _command_in(staging, version)
        reported = subprocess.run(
            [*command, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_base_env(staging),
        )
        if version not in reported.stdout:
            raise RuntimeError(
                f"{command} --version said {reported.stdout!r} {reported.stderr[-500:]!r}"
            )
        staging.rename(prefix)
        (prefix / ".installed").write_text(version)
        return _command_in(prefix, version)


def _base_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing of the test process (keys, Prefect settings) leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home),
        **QUIET_ENV,
    }


@dataclass
class Transcript:
    """What one `claude -p --output-format stream-json --verbose` run printed, parsed."""

    returncode: int | None
    events: list[dict[str, Any]]
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    unparsed: list[str] = field(default_factory=list)

    @property
    def init(self) -> dict[str, Any]:
        return next(
            e for e in self.events if e.get("type") == "system" and e.get("subtype") == "init"
        )

    @property
    def session_id(self) -> str:
        return self.init["session_id"]

    @property
    def result(self) -> dict[str, Any]:
        results = [e for e in self.events if e.get("type") == "result"]
        if not results:
            raise AssertionError(f"no result event; {self.describe()}")
        return results[-1]

    def blocks(self, role: str, kind: str) -> list[dict[str, Any]]:
        """Content blocks of one kind from the `assistant` or `user` events, in order."""
        out = []
        for event in self.events:
            if event.get("type") != role:
                continue
            content = event.get("message", {}).get("content")
            if isinstance(content, list):
                out.extend(b for b in content if isinstance(b, dict) and b.get("type") == kind)
        return out

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        return self.blocks("assistant", "tool_use")

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        return self.blocks("user", "tool_result")

    @property
    def assistant_text(self) -> str:
        return "".join(b.get("text", "") for b in self.blocks("assistant", "text"))

    def describe(self) -> str:
        """Enough of the run to see what went wrong in a failure message."""
        lines = [
            f"returncode={self.returncode} timed_out={self.timed_out} seconds={self.seconds:.1f}"
        ]
        for event in self.events:
            text = json.dumps(event)
            lines.append(text if len(text) < 600 else text[:600] + "...")
        if self.unparsed:
            lines.append("unparsed stdout: " + "\n".join(self.unparsed)[-2000:])
        lines.append("stderr: " + self.stderr[-3000:])
        return "\n".join(lines)


@dataclass
class ClaudeCode:
    """One installed release, ready to run headless against a base URL."""

    version: str
    command: list[str]

    @classmethod
    def installed(cls, version: str) -> ClaudeCode:
        return cls(version, install(version))

    @property
    def major_minor(self) -> tuple[int, int]:
        major, minor = version_tuple(self.version)[:2]
        return major, minor

    def env(
        self, base_url: str, home: Path, unset: tuple[str, ...] = (), **extra: str
    ) -> dict[str, str]:
        env = _base_env(home)
        env.update(
            {
                "ANTHROPIC_BASE_URL": base_url,
                "ANTHROPIC_API_KEY": "sk-ant-dummy-claude-code-test-key",
                "API_TIMEOUT_MS": "30000",
                "CLAUDE_CODE_MAX_RETRIES": "2",
                "BASH_DEFAULT_TIMEOUT_MS": "20000",
                "BASH_MAX_TIMEOUT_MS": "30000",
            }
        )
        env.update(extra)
        return {k: v for k, v in env.items() if k not in unset}

    def run(
        self,
        prompt: str,
        *,
        base_url: str,
        home: Path,
        cwd: Path,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        unset: tuple[str, ...] = (),
        timeout: float = DEFAULT_RUN_TIMEOUT,
    ) -> Transcript:
        """`claude -p PROMPT` in `cwd`; killed (whole process group) after `timeout` seconds.

        `env` adds variables; `unset` drops variables this helper would set (`QUIET_ENV`,
        the dummy `ANTHROPIC_API_KEY`, ...).
        """
        home.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        argv = [
            *self.command,
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
            *args,
        ]
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=self.env(base_url, home, unset, **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        timed_out = False
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            try:  # children it left behind (a Bash tool's shell) go too
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        events, unparsed = [], []
        for line in stdout.splitlines():
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                unparsed.append(line)
        return Transcript(
            process.returncode,
            events,
            stdout,
            stderr,
            time.monotonic() - started,
            timed_out,
            unparsed,
        )
