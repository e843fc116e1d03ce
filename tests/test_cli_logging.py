"""Logs: to a file with daily rotation and a bounded number kept; request bodies only where
OAS_ENV allows them; keys masked everywhere."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path

import pytest
import structlog

from src.core.logging import configure_from_settings, configure_logging
from src.core.settings import Settings
from tests.conftest import UPSTREAM_KEY

DAY = 86400


@pytest.fixture
def restore_logging():
    yield
    configure_logging("INFO", "console")  # what conftest set up for the rest of the suite


def _file_handler() -> logging.handlers.TimedRotatingFileHandler:
    return next(
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    )


def test_logs_go_to_the_file_as_well_with_keys_masked(tmp_path, restore_logging):
    log_file = tmp_path / "logs" / "oas.log"
    configure_from_settings(
        Settings(
            _env_file=None,
            log_file=log_file,  # type: ignore[call-arg]
            log_format="json",
        )
    )
    structlog.get_logger("oas.test").warning("upstream said", detail=f"bad key {UPSTREAM_KEY}")
    logging.getLogger("uvicorn.error").warning("a stdlib line")
    _file_handler().flush()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["upstream said", "a stdlib line"]
    assert "…[masked]" in lines[0]["detail"]
    assert UPSTREAM_KEY[8:] not in log_file.read_text()


def test_the_file_rotates_daily_and_keeps_only_the_retention(tmp_path, restore_logging):
    log_file = tmp_path / "oas.log"
    configure_from_settings(
        Settings(
            _env_file=None,
            log_file=log_file,  # type: ignore[call-arg]
            log_retention_days=3,
        )
    )
    handler = _file_handler()
    assert handler.when == "MIDNIGHT" and handler.backupCount == 3
    log = structlog.get_logger("oas.test")
    today = time.time()
    for days_ago in range(6, 0, -1):
        # As if midnight had passed `days_ago` days ago: the next line rotates the file.
        handler.rolloverAt = int(today - days_ago * DAY)
        log.info("a line", day=days_ago)
    log.info("today's line")
    handler.flush()
    rotated = sorted(p.name for p in tmp_path.glob("oas.log.*"))
    assert len(rotated) == 3, rotated  # six rotations, three kept: the newest
    assert all(len(name.removeprefix("oas.log.")) == 10 for name in rotated)  # oas.log.YYYY-MM-DD
    assert "today's line" in log_file.read_text()


def _request_with_logs(make_oas, upstream, tmp_path: Path, **settings: object) -> str:
    log_file = tmp_path / f"oas-{len(list(tmp_path.glob('oas-*.log')))}.log"
    config = Settings(
        _env_file=None,
        log_file=log_file,
        log_level="DEBUG",  # type: ignore[call-arg]
        **settings,
    )
    configure_from_settings(config)
    oas = make_oas()
    oas.client().messages.create(
        model="big",
        max_tokens=10,
        messages=[{"role": "user", "content": f"the-secret-question {UPSTREAM_KEY}"}],
    )
    _file_handler().flush()
    return log_file.read_text()


def test_development_logs_request_bodies_at_debug_with_keys_masked(
    make_oas, upstream, tmp_path, restore_logging
):
    logs = _request_with_logs(make_oas, upstream, tmp_path, env="development")
    assert "request body" in logs and "the-secret-question" in logs
    assert "response body" in logs and "echo: the-secret-question" in logs
    assert UPSTREAM_KEY not in logs and UPSTREAM_KEY[8:] not in logs


def test_production_never_logs_bodies_even_at_debug(make_oas, upstream, tmp_path, restore_logging):
    logs = _request_with_logs(make_oas, upstream, tmp_path, env="production")
    # JSON lines; only oas's own (the test's SDK client logs its request in this process too).
    ours = [line for line in map(json.loads, logs.splitlines()) if line["logger"].startswith("oas")]
    assert any(line["event"] == "request" and line["status"] == 200 for line in ours)
    assert not [
        line for line in ours if "body" in line["event"] or "the-secret-question" in str(line)
    ]


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_traceback_in_the_log_has_no_locals_and_no_configured_secret(
    tmp_path, restore_logging, fmt
):
    client_key = "plain-client-key-without-any-shape-42"  # not `sk-`: masked for being a key
    log_file = tmp_path / "oas.log"
    configure_from_settings(
        Settings(
            _env_file=None,
            log_file=log_file,
            log_format=fmt,  # type: ignore[call-arg]
            api_keys=client_key,
        )
    )

    def handle(headers: list[tuple[bytes, bytes]]) -> None:
        raise ValueError(f"cannot use {headers[0][1].decode()}")

    headers = [(b"x-api-key", client_key.encode())]
    try:
        handle(headers)
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    _file_handler().flush()
    text = log_file.read_text()
    assert "Exception in ASGI application" in text and "ValueError" in text
    assert client_key not in text and "[masked]" in text
    assert "x-api-key" not in text, "the traceback shows local variables"
    assert log_file.stat().st_mode & 0o777 == 0o600


def test_a_log_file_others_could_read_is_made_private(tmp_path, restore_logging):
    log_file = tmp_path / "oas.log"
    log_file.write_text("")
    log_file.chmod(0o644)
    configure_from_settings(Settings(_env_file=None, log_file=log_file))  # type: ignore[call-arg]
    _file_handler().flush()
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert "made a log file private" in log_file.read_text()
