"""Request payloads kept for replay, content-addressed so repeats cost nothing.

Claude Code resends the same 50-500 KB of system prompt and tools every turn, and each
turn's history repeats the last one's. A request is stored as a small manifest naming
blobs by the SHA-256 of their canonical JSON: the system prompt, the tool list, each
message and the remaining fields. A blob already on disk is not written again.
Secrets a request body can carry (MCP server tokens) are replaced before hashing.
Folders are made 0700 and files 0600: payloads are private to `oas`.
"""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from src.tracking.run import Run

log = structlog.get_logger("oas.recorder")

REDACTED = "[redacted]"

#: how long a blob stored or seen stays known without a look at the disk; `prune` spares
#: blobs touched within ten times this, so it never removes one a server counts on
SEEN_SECONDS = 60.0

#: zlib level 1: a fresh 138 KB Claude Code request costs ~1.0 ms of CPU to compress
#: instead of ~8.3 ms at level 6 (files ~30% larger). That CPU is taken on the recorder
#: thread, on the 2 cores the request loop also runs on; blobs are written once (deduped).
COMPRESS_LEVEL = 1


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """What storing one request cost: all its bytes, and the bytes new on disk."""

    request_id: str
    total_bytes: int
    new_bytes: int


def redact(request: dict[str, Any]) -> dict[str, Any]:
    """A copy of the request without secrets (shallow where nothing is secret)."""
    servers = request.get("mcp_servers")
    if not isinstance(servers, list):
        return request
    clean = []
    for server in servers:
        if isinstance(server, dict) and "authorization_token" in server:
            server = {**server, "authorization_token": REDACTED}
        clean.append(server)
    return {**request, "mcp_servers": clean}


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class PayloadStore:
    """A directory of manifests (`requests/`) and compressed blobs (`blobs/`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.requests = self.root / "requests"
        # one stat per blob per minute, not per request: a Claude Code turn names 100+
        self._seen: dict[str, float] = {}
        self._folders: set[str] = set()

    def _private_folder(self, folder: str) -> None:
        if folder not in self._folders:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            made, root = folder, str(self.root)
            while made.startswith(root):  # makedirs gives the parents it makes the umask's mode
                if os.stat(made).st_mode & 0o077:
                    os.chmod(made, 0o700)
                made = os.path.dirname(made)
            self._folders.add(folder)

    @staticmethod
    def _write_private(path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)

    def _blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest[2:]

    def _put(self, value: Any) -> tuple[str, int, int]:
        data = _canonical(value)
        digest = hashlib.sha256(data).hexdigest()
        now = time.monotonic()
        if self._seen.get(digest, 0.0) > now:  # stored (or touched) moments ago
            return digest, len(data), 0
        if len(self._seen) > 100_000:
            self._seen.clear()
        path = str(self._blob_path(digest))
        self._seen[digest] = now + SEEN_SECONDS
        if os.path.exists(path):
            os.utime(path)  # in use again: `prune` leaves recently touched blobs alone
            return digest, len(data), 0
        self._private_folder(os.path.dirname(path))
        tmp = f"{path}.{os.getpid()}.tmp"
        self._write_private(tmp, zlib.compress(data, COMPRESS_LEVEL))
        os.replace(tmp, path)
        return digest, len(data), len(data)

    def save_run(self, run: Run) -> StoredPayload | None:
        """Store a recorded run's request under its request id (None: nothing stored);
        its sizes go into the run's summary, for the artifact."""
        if run.payload is None:
            return None
        request_id = str(run.parameters.get("request_id") or run.id)
        try:
            stored = self.save(request_id, run.payload, run.summary.get("context"))
        except OSError as exc:
            log.warning("could not store request payload", error=str(exc))
            return None
        run.summary["payload_bytes"] = stored.total_bytes
        run.summary["payload_new_bytes"] = stored.new_bytes
        return stored

    def save(
        self, request_id: str, request: dict[str, Any], context: dict[str, Any] | None = None
    ) -> StoredPayload:
        """Store one request under its id; returns the byte counts for the dashboard."""
        request = redact(request)
        total = new = 0
        manifest: dict[str, Any] = {"v": 1, "created": time.time(), "context": context or {}}
        rest = dict(request)
        for part in ("system", "tools"):
            if part in rest:
                digest, size, added = self._put(rest.pop(part))
                manifest[part] = digest
                total, new = total + size, new + added
        messages = rest.pop("messages", [])
        manifest["messages"] = []
        for message in messages if isinstance(messages, list) else []:
            digest, size, added = self._put(message)
            manifest["messages"].append(digest)
            total, new = total + size, new + added
        digest, size, added = self._put(rest)
        manifest["rest"] = digest
        total, new = total + size, new + added
        self._private_folder(str(self.requests))
        body = orjson.dumps(manifest)
        self._write_private(str(self.requests / f"{request_id}.json"), body)
        return StoredPayload(request_id, total, new + len(body))

    def _get(self, digest: str) -> Any:
        return orjson.loads(zlib.decompress(self._blob_path(digest).read_bytes()))

    def load(self, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stored request and its context; `FileNotFoundError` if it was pruned."""
        manifest = orjson.loads((self.requests / f"{request_id}.json").read_bytes())
        request = self._get(manifest["rest"])
        for part in ("system", "tools"):
            if part in manifest:
                request[part] = self._get(manifest[part])
        request["messages"] = [self._get(d) for d in manifest["messages"]]
        return request, manifest.get("context", {})

    def prune(self, older_than_seconds: float) -> tuple[int, int]:
        """Delete manifests older than the bound, then blobs no manifest names.

        Returns (requests removed, blobs removed).
        """
        cutoff = time.time() - older_than_seconds
        removed_requests = 0
        live: set[str] = set()
        for path in self.requests.glob("*.json") if self.requests.exists() else []:
            try:
                manifest = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if manifest.get("created", 0) < cutoff:
                path.unlink(missing_ok=True)
                removed_requests += 1
                continue
            live.update(d for k in ("system", "tools", "rest") if (d := manifest.get(k)))
            live.update(manifest.get("messages", []))
        removed_blobs = 0
        in_use = time.time() - 10 * SEEN_SECONDS  # a running server may reuse these unseen
        for path in self.blobs.glob("*/*") if self.blobs.exists() else []:
            if path.parent.name + path.name in live or path.name.endswith(".tmp"):
                continue
            try:
                if path.stat().st_mtime > in_use:
                    continue
            except FileNotFoundError:
                continue
            path.unlink(missing_ok=True)
            removed_blobs += 1
        return removed_requests, removed_blobs
