"""A small website on loopback for web fetch tests: HTML, text, PDF, redirects, errors."""

from __future__ import annotations

import http.server
import threading
from typing import Any

ARTICLE = b"""<!doctype html><html><head><title>Prefect &amp; oas notes</title></head>
<body><nav>Home | About | Login</nav>
<article><h1>Running every request as a flow</h1>
<p>Each Anthropic Messages request becomes a Prefect flow run, so the dashboard shows
which steps ran and how long they took. This paragraph is long enough to be content.</p>
<p>Read <a href="/docs/replay">the replay guide</a> for failed runs.</p>
<ul><li>validate</li><li>convert</li></ul></article>
<footer>(c) nobody</footer></body></html>"""


def make_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer says `text` (built by hand: no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    site: WebSite

    def do_GET(self) -> None:
        self.site.paths.append(self.path)
        route = self.site.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self._send(404, "text/plain", b"not found")
            return
        status, headers, body = route
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class WebSite:
    """`routes[path] = (status, headers, body)`; `paths` lists what was requested."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {
            "/article": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE),
            "/notes.txt": (
                200,
                {"Content-Type": "text/plain; charset=utf-8"},
                "plain notes: caf\u00e9".encode(),
            ),
            "/paper.pdf": (200, {"Content-Type": "application/pdf"}, make_pdf("Hello from a PDF")),
            "/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + b"0" * 64),
            "/busy": (429, {"Content-Type": "text/plain"}, b"slow down"),
            "/gone": (410, {"Content-Type": "text/plain"}, b"gone"),
            "/big.txt": (200, {"Content-Type": "text/plain"}, b"x" * 300_000),
            "/to-article": (302, {"Location": "/article"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
        }
        handler = type("Handler", (_Handler,), {"site": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def redirect(self, path: str, location: str) -> None:
        self.routes[path] = (302, {"Location": location}, b"")

    def start(self) -> WebSite:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
