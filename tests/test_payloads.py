"""Stored request payloads: replayable, deduplicated, without secrets, prunable."""

from __future__ import annotations

import os
import time

from src.tracking.payloads import REDACTED, PayloadStore

SYSTEM = [{"type": "text", "text": "You are Claude Code. " * 4000}]  # ~84 KB, resent every turn
TOOLS = [
    {
        "name": f"Tool{i}",
        "description": "does things " * 200,
        "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
    }
    for i in range(30)
]


def _turn(n: int) -> dict:
    messages = []
    for i in range(n):
        messages.append({"role": "user", "content": f"question {i}"})
        messages.append({"role": "assistant", "content": f"answer {i}"})
    messages.append({"role": "user", "content": f"question {n}"})
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": SYSTEM,
        "tools": TOOLS,
        "messages": messages,
    }


def test_a_stored_request_loads_back_exactly(tmp_path):
    store = PayloadStore(tmp_path)
    request = _turn(3)
    store.save("req_1", request, {"session_id": "abc"})
    loaded, context = store.load("req_1")
    assert loaded == request
    assert context == {"session_id": "abc"}


def test_the_repeated_system_prompt_and_tools_are_stored_once(tmp_path):
    store = PayloadStore(tmp_path)
    first = store.save("req_1", _turn(1), None)
    assert first.new_bytes >= first.total_bytes * 0.9
    later = [store.save(f"req_{n}", _turn(n), None) for n in range(2, 20)]
    for stored in later:
        # each later turn adds two small messages and a manifest, not the 150 KB again
        assert stored.total_bytes > 100_000
        assert stored.new_bytes < 3_000
    on_disk = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
    assert on_disk < first.total_bytes  # 19 requests stored in less than one's raw size


def test_mcp_tokens_never_reach_the_disk(tmp_path):
    store = PayloadStore(tmp_path)
    request = {
        **_turn(0),
        "mcp_servers": [
            {
                "type": "url",
                "url": "https://mcp.example/sse",
                "name": "ex",
                "authorization_token": "secret-token-123",
            }
        ],
    }
    store.save("req_1", request, None)
    loaded, _ = store.load("req_1")
    assert loaded["mcp_servers"][0]["authorization_token"] == REDACTED
    for path in tmp_path.rglob("*"):
        if path.is_file():
            import zlib

            raw = path.read_bytes()
            try:
                raw = zlib.decompress(raw)
            except zlib.error:
                pass
            assert b"secret-token-123" not in raw


def test_prune_removes_old_requests_and_only_their_blobs(tmp_path):
    store = PayloadStore(tmp_path)
    store.save("old", {**_turn(0), "messages": [{"role": "user", "content": "only in old"}]}, None)
    old_manifest = tmp_path / "requests" / "old.json"
    import orjson

    manifest = orjson.loads(old_manifest.read_bytes())
    manifest["created"] = time.time() - 40 * 86400
    old_manifest.write_bytes(orjson.dumps(manifest))
    long_ago = time.time() - 40 * 86400
    for blob in (tmp_path / "blobs").glob("*/*"):  # written 40 days ago, not used since
        os.utime(blob, (long_ago, long_ago))
    store.save("new", _turn(1), None)  # a new server: it looks at the disk, touches reuse

    requests, blobs = store.prune(30 * 86400)
    assert (requests, blobs) == (1, 1)  # the old request and its one unshared message
    assert not old_manifest.exists()
    loaded, _ = store.load("new")
    assert loaded == _turn(1)
    assert os.path.exists(tmp_path / "requests" / "new.json")


def test_prune_spares_blobs_a_running_server_may_reuse(tmp_path):
    store = PayloadStore(tmp_path)
    store.save("old", _turn(0), None)
    old_manifest = tmp_path / "requests" / "old.json"
    import orjson

    manifest = orjson.loads(old_manifest.read_bytes())
    manifest["created"] = time.time() - 40 * 86400
    old_manifest.write_bytes(orjson.dumps(manifest))
    # the old request goes, but the blobs were written moments ago: this server
    # remembers them as stored and will name them in its next manifest unwritten
    assert store.prune(30 * 86400) == (1, 0)
    store.save("next", _turn(0), None)
    assert store.load("next")[0] == _turn(0)
