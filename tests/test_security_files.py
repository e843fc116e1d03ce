"""What `oas` keeps on disk is its own (0700 folders, 0600 files), and the processes it
starts that are not `oas` get no secret in their environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from src.core import secrets
from src.core.child_env import child_env
from src.core.settings import Settings
from src.local_prefect.private_files import secure_data_dir
from src.tracking.payloads import PayloadStore


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_payloads_are_written_private(tmp_path):
    store = PayloadStore(tmp_path / "payloads")
    store.save(
        "req_1", {"model": "big", "system": "s", "messages": [{"role": "user", "content": "hi"}]}
    )
    modes = _modes(tmp_path)
    assert modes and all(
        m == (0o700 if (tmp_path / p).is_dir() else 0o600) for p, m in modes.items()
    ), modes


def test_a_data_dir_an_older_oas_left_readable_is_tightened(tmp_path):
    data = tmp_path / "data"
    blob = data / "payloads" / "blobs" / "ab" / "cdef"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"x")
    for path in (data, data / "payloads", data / "payloads" / "blobs", blob.parent):
        path.chmod(0o755)
    blob.chmod(0o644)
    secure_data_dir(Settings(_env_file=None, data_dir=data))  # type: ignore[call-arg]
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {m for m in _modes(data).values()} <= {0o700, 0o600}


def test_a_child_environment_holds_no_secret_unless_named_for_it(monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-child-env-test-000000")
    monkeypatch.setenv("OAS_API_KEYS", "client-a-000000,client-b-000000")
    monkeypatch.setenv("SOME_TOKEN_UNDER_ANOTHER_NAME", "mcp-token-child-env-0000")
    monkeypatch.setenv("LANG", "C.UTF-8")
    secrets.remember("mcp-token-child-env-0000")
    env = child_env({"OWN_TOKEN": "mcp-token-child-env-0000"}, allow_secrets=True)
    assert env["LANG"] == "C.UTF-8" and "PATH" in env
    assert env["OWN_TOKEN"] == "mcp-token-child-env-0000"  # its configuration names it
    values = "\n".join(v for k, v in env.items() if k != "OWN_TOKEN")
    for secret in ("child-env-test", "client-a", "mcp-token-child-env"):
        assert secret not in values
    assert "OWN_TOKEN" not in child_env({"OWN_TOKEN": "mcp-token-child-env-0000"})


def test_flow_run_processes_inherit_the_upstream_key_and_nothing_else_secret(monkeypatch):
    """Prefect's runner starts each replay as a copy of `oas` with its environment."""
    from src.core.child_env import forget_client_secrets

    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-kept-for-replays-0000")
    monkeypatch.setenv("OAS_API_KEYS", "client-a-000000")
    monkeypatch.setenv("TRACKER_TOKEN", "mcp-token-forgotten-0000")
    secrets.remember("mcp-token-forgotten-0000")
    assert sorted(forget_client_secrets()) == ["OAS_API_KEYS", "TRACKER_TOKEN"]
    assert os.environ["OPENROUTER_API_KEY"] == "sk-or-v1-kept-for-replays-0000"
    assert "OAS_API_KEYS" not in os.environ and "TRACKER_TOKEN" not in os.environ


def test_named_client_keys_of_the_config_file_are_known_secrets(tmp_path):
    config = tmp_path / "oas.yaml"
    config.write_text(
        "clients:\n  alice: {key: alice-key-0123456789, budget_usd: 5}\n"
        "  bob:\n    keys: [bob-key-0123456789]\n"
    )
    found = secrets.client_keys_in_config(config)
    assert sorted(found) == ["alice-key-0123456789", "bob-key-0123456789"]
