"""`oas doctor` finds what would stop `oas serve` and says what to fix."""

from __future__ import annotations

import json
import os
import socket

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from src.cli import main as oas_main
from src.cli.doctor import FAIL, OK, check_upstream_key
from src.core.settings import Settings, get_settings
from tests.conftest import UPSTREAM_KEY
from tests.support.server import ThreadedServer
from tests.support.system_postgres import free_port


@pytest.fixture
def env(monkeypatch, tmp_path, upstream):
    """A configuration that passes: scripted upstream, tracking off, free port, fresh dir."""
    for name in list(os.environ):
        if name.startswith(("OAS_", "OPENROUTER_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENROUTER_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENROUTER_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("OAS_SMALL_MODEL", "openai/gpt-4o")  # the scripted upstream lists it
    monkeypatch.setenv("OAS_TRACKING", "false")
    monkeypatch.setenv("OAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OAS_PORT", str(free_port()))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def doctor(capsys, *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Run `oas doctor --json`; (exit code, checks by name, the whole output)."""
    get_settings.cache_clear()
    code = oas_main(["doctor", "--timeout", "3", "--json", *args])
    out = capsys.readouterr().out
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    return code, checks, out


def test_a_working_setup_passes(env, capsys):
    code, checks, out = doctor(capsys)
    assert code == 0, out
    assert {c["status"] for c in checks.values()} == {OK}
    assert "2 models listed" in checks["upstream"]["detail"]
    assert UPSTREAM_KEY not in out

    get_settings.cache_clear()
    assert oas_main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "no problems" in text and UPSTREAM_KEY not in text


def test_a_model_the_upstream_does_not_offer_is_a_problem_with_a_suggestion(env, capsys):
    env.setenv("OAS_BIG_MODEL", "anthropic/claude-sonet-4")
    code, checks, _ = doctor(capsys)
    assert code == 1
    check = checks["model OAS_BIG_MODEL"]
    assert check["status"] == FAIL
    assert "close: anthropic/claude-sonnet-4" in check["detail"]
    assert "OAS_BIG_MODEL" in check["fix"]


def test_an_unreachable_upstream_is_a_problem(env, capsys):
    env.setenv("OPENROUTER_BASE_URL", f"http://127.0.0.1:{free_port()}/api/v1")
    code, checks, _ = doctor(capsys)
    assert code == 1
    assert checks["upstream"]["status"] == FAIL
    assert "cannot reach" in checks["upstream"]["detail"]
    assert "OPENROUTER_BASE_URL" in checks["upstream"]["fix"]


def _openrouter_like(key_status: int) -> ThreadedServer:
    async def models(request):
        return JSONResponse(
            {"data": [{"id": "anthropic/claude-sonnet-4"}, {"id": "openai/gpt-4o"}]}
        )

    async def key(request):
        return JSONResponse(
            {"error": {"code": key_status, "message": "No auth credentials found"}},
            status_code=key_status,
        )

    app = Starlette(routes=[Route("/api/v1/models", models), Route("/api/v1/key", key)])
    return ThreadedServer(app).start()


def test_a_refused_key_is_a_problem(env, capsys):
    server = _openrouter_like(401)
    try:
        env.setenv("OPENROUTER_BASE_URL", f"{server.url}/api/v1")
        code, checks, out = doctor(capsys)
    finally:
        server.stop()
    assert code == 1
    assert checks["upstream"]["status"] == OK  # reachable: it is the key that is wrong
    assert checks["upstream key accepted"]["status"] == FAIL
    assert "openrouter.ai/keys" in checks["upstream key accepted"]["fix"]
    assert UPSTREAM_KEY not in out


def test_no_key_for_openrouter_is_a_problem_but_a_local_server_may_need_none():
    openrouter = Settings(_env_file=None, openrouter_api_key=None)  # type: ignore[call-arg]
    [check] = check_upstream_key(openrouter, 1)
    assert check.status == FAIL and "OPENROUTER_API_KEY=" in check.fix
    local = Settings(
        _env_file=None,
        openrouter_api_key=None,  # type: ignore[call-arg]
        openrouter_base_url="http://127.0.0.1:11434/v1",
    )
    [check] = check_upstream_key(local, 1)
    assert check.status == "warn"


def test_an_unreachable_prefect_is_a_problem(env, capsys):
    env.setenv("OAS_TRACKING", "true")
    env.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    code, checks, _ = doctor(capsys)
    assert code == 1
    assert checks["prefect"]["status"] == FAIL
    assert "PREFECT_API_URL" in checks["prefect"]["fix"]


def test_a_data_dir_that_cannot_be_created_is_a_problem(env, capsys, tmp_path):
    (tmp_path / "a-file").write_text("")
    env.setenv("OAS_DATA_DIR", str(tmp_path / "a-file" / "data"))
    code, checks, _ = doctor(capsys)
    assert code == 1
    assert checks["data dir"]["status"] == FAIL and "OAS_DATA_DIR" in checks["data dir"]["fix"]


def test_a_taken_port_is_a_problem_unless_it_is_an_oas(env, capsys, oas):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        env.setenv("OAS_PORT", str(other.getsockname()[1]))
        code, checks, _ = doctor(capsys)
    assert code == 1
    assert checks["listen port"]["status"] == FAIL and "OAS_PORT" in checks["listen port"]["fix"]

    env.setenv("OAS_PORT", str(oas.server.port))
    code, checks, _ = doctor(capsys)
    assert code == 0
    assert checks["listen port"]["status"] == "warn"
    assert "an oas already listens" in checks["listen port"]["detail"]


def test_listening_beyond_loopback_without_client_keys_fails_in_production(env, capsys):
    env.setenv("OAS_HOST", "0.0.0.0")
    code, checks, _ = doctor(capsys)
    assert code == 0 and checks["client keys"]["status"] == "warn"
    env.setenv("OAS_ENV", "production")
    code, checks, _ = doctor(capsys)
    assert code == 1 and checks["client keys"]["status"] == FAIL
    env.setenv("OAS_API_KEYS", "team-key")
    code, checks, _ = doctor(capsys)
    assert code == 0 and "client keys" not in checks


def test_the_sandbox_tier_and_what_it_enforces(env, capsys):
    from tests.support.code_execution import workspace_root

    with workspace_root() as root:
        env.setenv("OAS_CODE_EXECUTION", "true")
        env.setenv("OAS_CODE_EXECUTION_DIR", str(root / "workspaces"))
        code, checks, out = doctor(capsys)
        assert code == 0, out
        assert checks["sandbox"]["status"] == OK
        assert checks["sandbox"]["detail"].split()[1] in ("bubblewrap", "namespaces")
        assert checks["sandbox network"]["detail"] == "none (own network namespace)"
        assert "watchdog" in checks["sandbox memory total"]["detail"]
        assert checks["sandbox nested user namespaces"]["detail"] == "refused (seccomp)"
        # how the disk quota is held: by the kernel where a workspace can be mounted
        from src.sandbox.disk import unavailable

        cannot_mount = unavailable(root / "mount-probe")
        quota = checks["sandbox disk quota"]["detail"]
        if cannot_mount is None:
            assert quota.startswith("held by the kernel: each workspace is an ext4 file system")
        else:
            assert "watchdog" in quota and cannot_mount in quota

        # a host where no confining tier works: a problem, and how to fix it
        env.setenv("OAS_CODE_EXECUTION_ISOLATION", "bubblewrap")
        env.setenv("OAS_CODE_EXECUTION_DIR", str(root / "no-bwrap"))
        env.setattr("src.sandbox.isolation.shutil.which", lambda name: None)
        code, checks, out = doctor(capsys)
        assert code == 1 and checks["sandbox"]["status"] == FAIL
        assert "apt-get install bubblewrap" in checks["sandbox"]["fix"]

        # the weak tier, accepted by name: it runs, and the doctor says what it leaves open
        env.setenv("OAS_CODE_EXECUTION_ISOLATION", "rlimits")
        code, checks, out = doctor(capsys)
        assert checks["sandbox"]["status"] == "warn"
        assert "unix sockets" in checks["sandbox"]["detail"]
