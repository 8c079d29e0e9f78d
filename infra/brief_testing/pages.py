"""A web server on loopback for the demo, the tests and the benchmarks.

Serves a folder of pages with `ETag` and `Last-Modified` (and `Cache-Control` when given;
answering conditional requests with 304, and gzip-encoding a page when asked with `?gzip=1`),
plus the misbehaviours retrieval must survive:

- `?delay=S` on any path waits S seconds before answering
- `/status/N` answers with status N
- `/bytes/N` sends N bytes of text (without a Content-Length when `?chunked=1`)
- `/drip/N?every=S` sends N lines, one every S seconds (a server that never quite stops)
- `/redirect/N` redirects N times, then to `?to=` or the first page served
- `/redirect-to?url=U` redirects to U, wherever that is (a private address, another scheme)
- `/redirect-loop` redirects to `/redirect-loop/back`, which redirects back
- `/gzip-bomb?size=N` is a small gzip body (`Content-Encoding: gzip`) that inflates to N bytes
- `/content-type/TYPE/SUBTYPE` answers a few bytes labelled with that content type

With `PageFaults`, a seeded share of requests misbehave on any path: the connection is reset
before any answer, or the answer comes only after `stall_s` (past a fetcher's timeout).
Whether a request misbehaves depends only on the seed, its path and query, and how many
times that URL was asked for before, so a run's faults do not depend on thread timing.

Every request is recorded (`requests`, `hits`), so a test can show a page was not downloaded
again.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import mimetypes
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

SAMPLES = Path(__file__).parent / "samples"
_PAGE_SUFFIXES = {".html", ".txt", ".htm"}
_PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@dataclass(frozen=True, slots=True)
class Served:
    """One request the server answered."""

    path: str
    status: int
    conditional: bool  # it carried If-None-Match or If-Modified-Since
    body_bytes: int  # bytes of body in the answer (0 for a 304), recorded before it is sent


@dataclass(frozen=True)
class PageFaults:
    """What goes wrong with pages, and how often (fractions of requests)."""

    timeout: float = 0.0  # the answer comes only after `stall_s`
    reset: float = 0.0  # the connection is reset before any answer
    stall_s: float = 5.0
    seed: int = 0

    def draw(self, url: str, nth: int) -> str | None:
        """The fault for the `nth` request of `url` (path and query), if any: a pure
        function of the seed and the request, so thread timing changes nothing."""
        digest = hashlib.sha256(f"{self.seed}\0{url}\0{nth}".encode()).digest()
        roll = int.from_bytes(digest[:8], "big") / 2**64
        if roll < self.reset:
            return "reset"
        if roll < self.reset + self.timeout:
            return "timeout"
        return None


class PageServer:
    """A threaded HTTP server on 127.0.0.1 and a free port, serving `root`."""

    def __init__(
        self,
        root: Path = SAMPLES,
        host: str = "127.0.0.1",
        *,
        faults: PageFaults | None = None,
        cache_control: str | None = None,
    ) -> None:
        self.root = root.resolve()
        self.requests: list[Served] = []
        self.faults = faults or PageFaults()
        self.cache_control = cache_control  # sent with every page (e.g. "max-age=300")
        self.injected: Counter[str] = Counter()  # faults by kind ("reset", "timeout")
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"root": self.root, "pages_server": self})
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
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
        return [f"{self.url}/{p.name}" for p in _page_files(self.root, pattern)]

    def hits(self, path: str, *, conditional: bool | None = None) -> int:
        """How many requests `path` has had (only conditional ones, or only plain ones)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path == path and (conditional is None or r.conditional == conditional)
            )

    def record(self, served: Served) -> None:
        """Note one answered request (called by the handler threads)."""
        with self._lock:
            self.requests.append(served)

    def fault_for(self, url: str) -> str | None:
        """The fault this request of `url` meets, if any (counted)."""
        with self._lock:
            nth = self._seen[url]
            self._seen[url] += 1
        fault = self.faults.draw(url, nth)
        if fault is not None:
            with self._lock:
                self.injected[fault] += 1
        return fault


def _page_files(root: Path, pattern: str = "*") -> list[Path]:
    return [
        p
        for p in sorted(root.glob(pattern))
        if p.is_file() and p.suffix in _PAGE_SUFFIXES and p.name != "question.txt"
    ]


@contextlib.contextmanager
def serving(root: Path = SAMPLES) -> Iterator[PageServer]:
    """A started PageServer, stopped on exit."""
    server = PageServer(root).start()
    try:
        yield server
    finally:
        server.stop()


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A gzip body that inflates to `size` bytes of spaces (built once per size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.compress(b" " * (size % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    root: Path
    pages_server: PageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo print what matters themselves."""

    def handle(self) -> None:
        """Serve the connection; a client that hangs up mid-way is normal here."""
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def do_GET(self) -> None:  # the stdlib's name
        fault = self.pages_server.fault_for(self.path)
        if fault == "reset":
            self._reset()
            return
        if fault == "timeout":
            time.sleep(self.pages_server.faults.stall_s)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        delay = min(float(query.get("delay", "0") or 0), 60.0)
        if delay:
            time.sleep(delay)
        parts = [p for p in url.path.split("/") if p]
        route = parts[0] if parts else ""
        number = int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None
        if route == "status" and number is not None:
            self._send(number, b"status page\n", "text/plain")
        elif route == "bytes" and number is not None:
            self._stream(number, chunked=query.get("chunked") == "1")
        elif route == "drip" and number is not None:
            self._drip(number, every=min(float(query.get("every", "1") or 1), 10.0))
        elif route == "redirect" and number is not None:
            last = query.get("to") or self._first_page()
            suffix = f"?{urlencode({'to': query['to']})}" if "to" in query else ""
            self._redirect(f"/redirect/{number - 1}{suffix}" if number > 1 else last)
        elif route == "redirect-to" and "url" in query:
            self._redirect(query["url"])
        elif route == "redirect-loop":
            self._redirect("/redirect-loop" if parts[1:] == ["back"] else "/redirect-loop/back")
        elif route == "gzip-bomb":
            size = min(int(query.get("size", "100000000")), 1 << 30)
            self._send(200, gzip_bomb(size), "text/html; charset=utf-8", encoding="gzip")
        elif route == "content-type" and len(parts) == 3:
            kind = f"{parts[1]}/{parts[2]}"
            self._send(200, _PNG if kind == "image/png" else b"some bytes\n", kind)
        else:
            self._file(url.path, gzipped=query.get("gzip") == "1")

    def _reset(self) -> None:
        """Drop the connection with a TCP RST (linger 0), as a crashing server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _first_page(self) -> str:
        pages = _page_files(self.root)
        return f"/{pages[0].name}" if pages else "/"

    def _conditional(self) -> bool:
        return "If-None-Match" in self.headers or "If-Modified-Since" in self.headers

    def _file(self, path: str, *, gzipped: bool) -> None:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_file() or self.root not in target.parents:
            self._send(404, b"not found\n", "text/plain")
            return
        body = target.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
        mtime = int(target.stat().st_mtime)
        validators = {"ETag": etag, "Last-Modified": formatdate(mtime, usegmt=True)}
        if self.pages_server.cache_control:
            validators["Cache-Control"] = self.pages_server.cache_control
        if self._unchanged(etag, mtime):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name, value in validators.items():
                self.send_header(name, value)
            self._record(304, 0)
            self.end_headers()
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        if gzipped:
            self._send(200, gzip.compress(body), kind, encoding="gzip", extra=validators)
        else:
            self._send(200, body, kind, extra=validators)

    def _unchanged(self, etag: str, mtime: int) -> bool:
        """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return etag in tags or "*" in tags
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            return mtime <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False

    def _redirect(self, location: str) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self._record(HTTPStatus.FOUND, 0)
        self.end_headers()

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        encoding: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self._record(status, len(body))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def _record(self, status: int, body_bytes: int) -> None:
        path = urlsplit(self.path).path
        self.pages_server.record(Served(path, status, self._conditional(), body_bytes))

    def _stream(self, size: int, *, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self._record(200, size)
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

    def _drip(self, lines: int, *, every: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        piece = b"still here\n"
        self._record(200, lines * len(piece))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(lines):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
                time.sleep(every)
            self.wfile.write(b"0\r\n\r\n")
