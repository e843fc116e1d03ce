"""Loopback by default; a loud warning when listening beyond it without OAS_API_KEYS."""

from __future__ import annotations

import argparse
import logging
import signal

import pytest
import uvicorn

from src.cli import serve as serve_module
from src.core.settings import Settings, get_settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_default_listen_address_is_loopback():
    assert settings().host == "127.0.0.1"
    assert serve_module.is_loopback(settings().host)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback_addresses_need_no_warning(host):
    assert serve_module.exposure_warning(host, settings()) is None


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "my-server.lan", "eth0"]
)
def test_anything_else_without_keys_is_warned_about(host):
    warning = serve_module.exposure_warning(host, settings())
    assert warning is not None and host in warning and "OAS_API_KEYS" in warning


def test_with_keys_there_is_nothing_to_warn_about():
    assert serve_module.exposure_warning("0.0.0.0", settings(api_keys=["k" * 20])) is None


@pytest.fixture
def serve_without_listening(monkeypatch, tmp_path):
    """`oas serve` as far as the moment it would start listening (nothing is bound)."""
    seen: dict[str, object] = {}

    def fake_run(self: uvicorn.Server) -> None:
        seen["config"] = self.config

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setenv("OAS_DATA_DIR", str(tmp_path))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    sigterm = signal.getsignal(signal.SIGTERM)
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()
    root.handlers, root.level = handlers, level
    signal.signal(signal.SIGTERM, sigterm)


def run_serve(host: str | None) -> int:
    return serve_module.serve(argparse.Namespace(host=host, port=18082, no_prefect=True))


def test_serve_shouts_when_listening_beyond_loopback_without_keys(serve_without_listening, capsys):
    assert run_serve("0.0.0.0") == 0
    err = capsys.readouterr().err
    assert "!!! LISTENING ON 0.0.0.0 WITHOUT OAS_API_KEYS" in err
    assert serve_without_listening["config"].host == "0.0.0.0"


def test_serve_is_quiet_on_loopback(serve_without_listening, capsys):
    assert run_serve(None) == 0
    out, err = capsys.readouterr()
    assert "oas listening on http://127.0.0.1:18082" in out
    assert "WITHOUT OAS_API_KEYS" not in err


def test_serve_is_quiet_beyond_loopback_with_keys(serve_without_listening, capsys, monkeypatch):
    monkeypatch.setenv("OAS_API_KEYS", "some-long-client-key-123")
    assert run_serve("0.0.0.0") == 0
    assert "WITHOUT OAS_API_KEYS" not in capsys.readouterr().err


def test_serve_refuses_a_broken_config_file_cleanly(
    serve_without_listening, capsys, monkeypatch, tmp_path
):
    path = tmp_path / "oas.yaml"
    path.write_text("fallbakcs:\n  big: [x/y]\n")
    monkeypatch.setenv("OAS_CONFIG", str(path))
    assert run_serve(None) == 2
    err = capsys.readouterr().err
    assert "cannot start" in err and "fallbakcs" in err and "Traceback" not in err
    assert "config" not in serve_without_listening
