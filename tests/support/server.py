"""Run `oas` (or any ASGI app) under uvicorn on a free loopback port, in a thread.

Given oas's settings, the server runs with the uvicorn config `oas serve` builds
(`src.api.http_server.server_config`): uvloop, the connection guard, the same timeouts."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class ThreadedServer:
    """`with ThreadedServer(app) as s:` -> `s.url` answers until the block ends."""

    def __init__(self, app: Any, settings: Any = None) -> None:
        self.app = app
        self.settings = settings  # oas's Settings: run with the config `oas serve` uses
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        if self.settings is not None:
            from src.api.http_server import server_config

            settings = self.settings.model_copy(update={"shutdown_timeout": 5})
            config: uvicorn.Config = server_config(self.app, settings, "127.0.0.1", self.port)
        else:
            config = uvicorn.Config(
                self.app, log_config=None, access_log=False, timeout_graceful_shutdown=5
            )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            daemon=True,
            name=f"oas-test-{self.port}",
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
