"""A web server on loopback for the demo, the tests and the benchmarks.

Serves a folder of pages, plus the misbehaviours retrieval must survive: `?delay=S` waits
before answering, `/status/N` answers with that status, `/bytes/N` sends N bytes of text
(without a Content-Length when `?chunked=1`), and `/redirect/N` redirects N times.
"""

from __future__ import annotations

import contextlib
import mimetypes
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SAMPLES = Path(__file__).parent / "samples"


class PageServer:
    """A threaded HTTP server on 127.0.0.1 and a free port, serving `root`."""

    def __init__(self, root: Path = SAMPLES, host: str = "127.0.0.1") -> None:
        self.root = root.resolve()
        handler = type("Handler", (_Handler,), {"root": self.root})
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        port = self._server.server_address[1]
        self.url = f"http://{host}:{port}"

    def start(self) -> PageServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def pages(self, pattern: str = "*") -> list[str]:
        """URLs of the served files matching `pattern`, sorted by name."""
        return [
            f"{self.url}/{p.name}"
            for p in sorted(self.root.glob(pattern))
            if p.is_file() and p.suffix in {".html", ".txt", ".htm"} and p.name != "question.txt"
        ]


@contextlib.contextmanager
def serving(root: Path = SAMPLES) -> Iterator[PageServer]:
    """A started PageServer, stopped on exit."""
    server = PageServer(root).start()
    try:
        yield server
    finally:
        server.stop()


class _Handler(BaseHTTPRequestHandler):
    root: Path
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo print what matters themselves."""

    def do_GET(self) -> None:  # the stdlib's name
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        delay = min(float(query.get("delay", "0") or 0), 60.0)
        if delay:
            time.sleep(delay)
        parts = [p for p in url.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            self._send(int(parts[1]), b"status page\n", "text/plain")
        elif len(parts) == 2 and parts[0] == "bytes" and parts[1].isdigit():
            self._stream(int(parts[1]), chunked=query.get("chunked") == "1")
        elif len(parts) == 2 and parts[0] == "redirect" and parts[1].isdigit():
            hops = int(parts[1])
            target = f"/redirect/{hops - 1}" if hops > 1 else "/01-swarm.html"
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._file(url.path)

    def _file(self, path: str) -> None:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_file() or self.root not in target.parents:
            self._send(404, b"not found\n", "text/plain")
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        self._send(200, target.read_bytes(), kind)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, size: int, *, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        line = b"All work and no play makes a very long page. " * 20 + b"\n"
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < size:
                piece = line[: size - sent]
                if chunked:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    self.wfile.write(piece)
                sent += len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
