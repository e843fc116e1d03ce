"""A streaming request read to its end in a thread, for tests that do something to the
server (a signal, a config change) while a stream is under way."""

from __future__ import annotations

import threading

import httpx


class StreamInBackground(threading.Thread):
    """POSTs a streaming /v1/messages to `url`; `started` is set once text flows (or the
    request failed), `text` holds the SSE lines read, `error` what cut it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.started = threading.Event()
        self.text = ""
        self.request_id = ""
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            with httpx.stream(
                "POST",
                f"{self.url}/v1/messages",
                timeout=60,
                json={
                    "model": "big",
                    "max_tokens": 100,
                    "stream": True,
                    "messages": [{"role": "user", "content": "count slowly"}],
                },
            ) as response:
                self.request_id = response.headers["request-id"]
                for line in response.iter_lines():
                    self.text += line + "\n"
                    if "text_delta" in line:
                        self.started.set()
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.started.set()
