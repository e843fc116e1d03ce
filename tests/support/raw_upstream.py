"""A TCP upstream that misbehaves below HTTP: resets, silence, garbage.

`ScriptedUpstream` speaks proper HTTP; the faults a real network produces (a reset
before any answer, a server that accepts and never speaks) need a socket of their own.
Every connection is counted, and whether the client closed it is recorded.
"""

from __future__ import annotations

import socket
import struct
import threading
import time


class RawUpstream:
    """`mode`: "reset" (RST as soon as the request arrived), "silent" (never answer),
    "garbage" (a line that is not HTTP, then close)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.client_closed = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"raw-{mode}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> RawUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> RawUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        try:
            self._read_request(conn)
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.mode == "garbage":
                conn.sendall(b"this is not HTTP at all\r\n\r\n")
            elif self.mode == "silent":
                deadline = time.monotonic() + 60
                while not self._stop.is_set() and time.monotonic() < deadline:
                    try:
                        if conn.recv(4096) == b"":
                            self.client_closed += 1
                            return
                    except TimeoutError:
                        continue
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            data += chunk
