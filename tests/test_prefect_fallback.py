"""When the embedded PostgreSQL cannot run, the local Prefect server says why and uses SQLite."""

from __future__ import annotations

import logging

import httpx
import pytest

from src.local_prefect.prefect_server import LocalPrefectServer
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_postgresql_that_cannot_run_falls_back_to_sqlite(tmp_path, monkeypatch, caplog):
    server = LocalPrefectServer(tmp_path / "data", free_port(), "postgres", restart=False)

    def cannot_run() -> str:  # what a data dir on a noexec mount gives
        raise RuntimeError("initdb failed: Permission denied")

    monkeypatch.setattr(server.postgres, "start", cannot_run)
    with caplog.at_level(logging.WARNING, logger="oas.prefect"):
        try:
            api_url = server.start(timeout=180)
            assert httpx.get(f"{api_url}/health", timeout=10).status_code == 200
            flows = httpx.post(f"{api_url}/flows/", json={"name": "fallback-check"}, timeout=10)
            assert flows.status_code in (200, 201)
        finally:
            server.stop()
    assert server.database == "sqlite"
    assert (tmp_path / "data" / "prefect" / "prefect.db").exists()
    said = [r.getMessage() for r in caplog.records if "cannot run here" in r.getMessage()]
    assert said and "Permission denied" in said[0], caplog.text
