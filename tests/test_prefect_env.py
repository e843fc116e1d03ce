"""`oas` never lets Prefect start a throwaway server: no API URL is an error, and the URL it
is given reaches Prefect even when Prefect was imported first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio
from src.core.prefect_env import forbid_ephemeral_server
forbid_ephemeral_server()
from prefect import get_client

async def main():
    async with get_client() as client:
        await client.read_flows()

try:
    asyncio.run(main())
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


def test_without_an_api_url_a_prefect_call_fails_instead_of_starting_a_server(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["HOME"] = str(tmp_path)  # Prefect's default profile, which allows ephemeral mode
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert "No Prefect API URL provided" in output, output
    assert "temporary server" not in output.lower()
    assert not list(tmp_path.rglob("*.db")), "a Prefect database appeared"


def test_the_api_url_reaches_prefect_even_after_its_import():
    from prefect.settings import get_current_settings

    from src.core.prefect_env import use_prefect_api

    before = os.environ.get("PREFECT_API_URL")
    try:
        use_prefect_api("http://127.0.0.1:9/api")
        settings = get_current_settings()
        assert settings.api.url == "http://127.0.0.1:9/api"
        assert settings.server.ephemeral.enabled is False
        assert settings.server.analytics_enabled is False
    finally:
        if before is not None:
            use_prefect_api(before)
