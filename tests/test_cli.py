"""The `oas` command line: help, `oas config`, OAS_ENV, configuration errors, --reload."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.cli import build_parser
from src.cli import main as oas_main
from src.core.settings import Settings, get_settings
from tests.conftest import UPSTREAM_KEY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No OAS_* or OPENROUTER_* from outside, a fresh directory (no .env), fresh settings."""
    import os

    for name in list(os.environ):
        if name.startswith(("OAS_", "OPENROUTER_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    return monkeypatch


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# ---- help ----------------------------------------------------------------------------------


def test_help_lists_every_subcommand_and_answers_without_heavy_imports():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from src.cli import main\n"
            "try: main(['--help'])\n"
            "except SystemExit: pass\n"
            "heavy = [m for m in ('prefect', 'litellm', 'fastapi', 'uvicorn')\n"
            "         if m in sys.modules]\n"
            "print('HEAVY', heavy)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "HEAVY []" in result.stdout, result.stdout
    for name in _subcommands():
        assert re.search(rf"^\s+{name}\s+\S", result.stdout, re.MULTILINE), name
    assert "oas config" in result.stdout and "docs/" in result.stdout


def test_every_subcommand_and_option_is_explained_with_examples():
    for name, parser in _subcommands().items():
        assert parser.description and len(parser.description) > 40, name
        assert parser.epilog and "examples:" in parser.epilog, name
        examples = [e.split()[1] for e in re.findall(r"^\s+(oas \S+)", parser.epilog, re.MULTILINE)]
        assert name in examples, f"`oas {name} --help` shows no example of itself"
        assert set(examples) <= set(_subcommands()), examples
        for action in parser._actions:
            assert action.help, f"oas {name} {action.option_strings or action.dest}: no help"


def test_no_command_prints_help_and_fails(capsys):
    assert oas_main([]) == 2
    assert "serve" in capsys.readouterr().err


# ---- oas config ----------------------------------------------------------------------------


def test_config_shows_values_and_where_they_came_from_with_secrets_masked(
    clean_env, tmp_path, capsys
):
    clean_env.setenv("OPENROUTER_API_KEY", UPSTREAM_KEY)
    clean_env.setenv("OAS_PORT", "9100")
    clean_env.setenv("OAS_API_KEYS", "client-secret-1,client-secret-2")
    clean_env.setenv("PREFECT_API_URL", "http://admin:hunter2hunter2@prefect.internal:4200/api")
    (tmp_path / ".env").write_text("OAS_BIG_MODEL=openai/gpt-4o\n")

    assert oas_main(["config"]) == 0
    out = capsys.readouterr().out
    lines = {
        line.split()[0]: line for line in out.splitlines() if line[:1].isupper() and " " in line
    }
    assert "9100" in lines["OAS_PORT"] and lines["OAS_PORT"].endswith("environment")
    assert "openai/gpt-4o" in lines["OAS_BIG_MODEL"] and ".env" in lines["OAS_BIG_MODEL"]
    assert lines["OAS_HOST"].endswith("default")
    assert "sk-or-" in lines["OPENROUTER_API_KEY"] and "[masked]" in lines["OPENROUTER_API_KEY"]
    assert "2 keys [masked]" in lines["OAS_API_KEYS"]
    assert "admin:****@prefect.internal" in lines["PREFECT_API_URL"]
    for secret in (UPSTREAM_KEY, UPSTREAM_KEY[10:], "client-secret-1", "hunter2hunter2"):
        assert secret not in out
    assert "http://127.0.0.1:9100" in out  # what the settings add up to


def test_config_lists_every_setting_and_json_and_changed_agree(clean_env, capsys):
    clean_env.setenv("OAS_READ_TIMEOUT", "30")  # the old name of OAS_IDLE_TIMEOUT
    assert oas_main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    every_env = {info.validation_alias.choices[0] for info in Settings.model_fields.values()}
    assert set(data["settings"]) == every_env
    assert data["settings"]["OAS_IDLE_TIMEOUT"] == {"value": "30", "source": "environment"}

    assert oas_main(["config", "--changed"]) == 0
    out = capsys.readouterr().out
    assert "OAS_IDLE_TIMEOUT" in out and "OAS_HOST " not in out


def test_production_changes_the_defaults_and_config_says_so(clean_env, capsys):
    clean_env.setenv("OAS_ENV", "production")
    settings = get_settings()
    assert settings.log_format == "json" and settings.debug_payloads is False
    assert oas_main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["settings"]
    assert shown["OAS_LOG_FORMAT"] == {"value": "json", "source": "default for OAS_ENV=production"}
    assert shown["OAS_ENV"]["source"] == "environment"


def test_an_explicit_value_beats_the_production_default(clean_env):
    clean_env.setenv("OAS_ENV", "production")
    clean_env.setenv("OAS_LOG_FORMAT", "console")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.log_format == "console" and settings.debug_payloads is False
    assert Settings(_env_file=None).env == "production"  # type: ignore[call-arg]
    assert Settings(_env_file=None, env="development").log_format == "console"  # type: ignore[call-arg]


def test_invalid_configuration_is_one_clear_message_not_a_traceback(clean_env, capsys):
    clean_env.setenv("OAS_PORT", "eighty")
    clean_env.setenv("OAS_ENV", "staging")
    clean_env.setenv("OPENROUTER_API_KEY", UPSTREAM_KEY)
    for command in (["config"], ["serve"], ["doctor"]):
        get_settings.cache_clear()
        assert oas_main(command) == 2
        err = capsys.readouterr().err
        assert "OAS_PORT: Input should be a valid integer" in err and "'eighty'" in err
        assert "OAS_ENV: Input should be 'development' or 'production'" in err
        assert "Traceback" not in err and UPSTREAM_KEY not in err


def test_reload_is_refused_in_production_before_anything_starts(clean_env, tmp_path):
    clean_env.setenv("OAS_ENV", "production")
    clean_env.setenv("OAS_DATA_DIR", str(tmp_path / "data"))
    assert oas_main(["serve", "--reload"]) == 2
    assert not (tmp_path / "data").exists(), "nothing may start when --reload is refused"


@pytest.mark.e2e
def test_serve_reload_runs_the_app_in_a_worker_and_stops_on_sigterm(upstream, tmp_path):
    import os
    import signal
    import time

    import httpx

    from tests.support.system_postgres import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OAS_", "OPENROUTER_"))}
    env.update(
        OAS_PORT=str(port),
        OAS_DATA_DIR=str(tmp_path / "data"),
        OPENROUTER_BASE_URL=upstream.base_url,
        OPENROUTER_API_KEY=UPSTREAM_KEY,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "src", "serve", "--reload", "--no-prefect"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "oas serve --reload did not answer"
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.25)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/messages",
            timeout=10,
            json={
                "model": "big",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert answer.json()["content"][0]["text"] == "echo: hi"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output
