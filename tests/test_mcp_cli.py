"""`oas mcp list` and `oas mcp status`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.mcp_process import ROOT
from tests.support.web_site import WebSite


def oas(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "src", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **env},
    )


def test_list_starts_each_server_and_shows_its_functions(tmp_path: Path) -> None:
    config = tmp_path / "oas.yaml"
    config.write_text(
        "mcp_servers:\n"
        f"  - name: calc\n    command: [{sys.executable}, -m, tests.support.mcp_server, stdio]\n"
        f"    cwd: {ROOT}\n    allowed_tools: [add, echo]\n"
        f"  - name: broken\n    command: [{sys.executable}, -c, 'raise SystemExit(1)']\n"
        "    timeout: 5\n"
    )
    env = {"OAS_CONFIG": str(config), "OAS_DATA_DIR": str(tmp_path / "data")}
    result = oas("mcp", "list", "--json", "--timeout", "20", env=env)
    assert result.returncode == 1  # one server did not start
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert listing["calc"]["state"] == "running"
    assert [t["function"] for t in listing["calc"]["tools"]] == [
        "mcp__calc__add",
        "mcp__calc__echo",
    ]
    assert listing["broken"]["state"] != "running" and listing["broken"]["last_error"]

    human = oas("mcp", "list", env={**env, "OAS_CONFIG": str(config)})
    assert "mcp__calc__add" in human.stdout and "not running" in human.stdout


def test_list_without_servers_says_how_to_add_them(tmp_path: Path) -> None:
    result = oas("mcp", "list", env={"OAS_DATA_DIR": str(tmp_path)})  # no OAS_CONFIG
    assert result.returncode == 1 and "mcp_servers" in result.stderr


def test_status_reads_the_running_servers_health() -> None:
    site = WebSite()
    states = [
        {
            "name": "calc",
            "state": "running",
            "healthy": True,
            "tools": ["add"],
            "restarts": 2,
            "last_error": None,
            "since": 0,
        },
        {
            "name": "web",
            "state": "restarting",
            "healthy": False,
            "tools": [],
            "restarts": 5,
            "last_error": "ConnectError: refused",
            "since": 0,
        },
    ]
    site.routes["/health/detailed"] = (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"status": "ok", "mcp_servers": states}).encode(),
    )
    site.start()
    try:
        result = oas("mcp", "status", env={"OAS_HOST": "127.0.0.1", "OAS_PORT": str(site.port)})
    finally:
        site.stop()
    assert result.returncode == 1  # one server is not healthy
    assert "calc" in result.stdout and "2 restarts" in result.stdout
    assert "last error: ConnectError: refused" in result.stdout


def test_status_when_oas_is_not_running() -> None:
    result = oas("mcp", "status", env={"OAS_HOST": "127.0.0.1", "OAS_PORT": "9"})
    assert result.returncode == 1 and "not answering" in result.stderr
