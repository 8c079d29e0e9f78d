"""A search engine and a vector index on loopback, over the bundled samples, for the demo and
the tests: Brief's search and vector adapters talk to them exactly as to the real services.

- `GET /search?q=...&format=json` answers as SearXNG does, ranking the sample pages by how
  many of the query's words they contain; result URLs point at a `PageServer`, so a hit can
  be fetched like any page. Any other `format` is refused with 403, as an instance without
  that output format enabled does.
- `POST /collections/{name}/points/query` answers as Qdrant's Query API does, over the
  samples' paragraphs (collection `samples`). The query is a vector, or a `Document`
  (`{"text": ..., "model": "brief/hashed-words"}`) that the server embeds itself, so text
  queries work offline. `GET /collections/{name}` describes the collection.

The embedding is a deterministic hashed bag of words (`embed_text`), normalised so that a dot
product is the cosine similarity: crude, but it ranks the paragraph about stop signals first
for a question about stop signals, with no model to download.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from brief.extraction import extract
from brief_testing.pages import SAMPLES

__all__ = [
    "COLLECTION",
    "DIMENSIONS",
    "EMBEDDING_MODEL",
    "FakeServices",
    "embed_text",
    "serving",
    "words",
]

EMBEDDING_MODEL = "brief/hashed-words"
DIMENSIONS = 256
COLLECTION = "samples"

_PAGE_SUFFIXES = {".html", ".htm", ".txt"}
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a about after all also an and any are as at be been before but by can did do does for "
        "from had has have how if in into is it its more most no not of on one or other our out "
        "so than that the their them then there these they this to up was we were what when "
        "where which while who why will with would you your",
    )
)
_MIN_PASSAGE_WORDS = 12
_SNIPPET_CHARS = 300
_MAX_REQUEST_BYTES = 1_000_000


def words(text: str) -> list[str]:
    """Lowercase content words, plurals made singular ("scouts" matches "scout")."""
    found = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        found.append(word)
    return found


def embed_text(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """A hashed bag-of-words vector of unit length (all zeros for a text without words).

    Each word adds 1 + log(count) to one of `dimensions` slots, with a sign, both picked by
    a hash of the word (the "hashing trick"); the same text always gives the same vector.
    """
    vector = [0.0] * dimensions
    for word, count in Counter(words(text)).items():
        digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        sign = 1.0 if digest >> 63 else -1.0
        vector[digest % dimensions] += sign * (1.0 + math.log(count))
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


@dataclass(frozen=True, slots=True)
class SampleDocument:
    """One sample page as the search engine indexes it."""

    url: str
    title: str
    paragraphs: tuple[str, ...]
    counts: Counter[str]  # how often each word occurs in the title and text


@dataclass(frozen=True, slots=True)
class StoredPassage:
    """One point of the vector collection."""

    id: int
    vector: tuple[float, ...]
    payload: dict[str, str]


class FakeServices:
    """A threaded HTTP server on loopback offering the SearXNG and Qdrant endpoints above.

    `pages_url` is where a `PageServer` serves the same `root`; search results and passage
    URLs point there. With `api_key`, the Qdrant endpoints require it in `api-key`.
    """

    def __init__(
        self,
        pages_url: str,
        root: Path = SAMPLES,
        host: str = "127.0.0.1",
        *,
        api_key: str | None = None,
    ) -> None:
        self.documents = _index(root, pages_url.rstrip("/"))
        self.passages = [
            StoredPassage(
                id=n,
                vector=tuple(embed_text(paragraph)),
                payload={"text": paragraph, "title": doc.title, "url": doc.url},
            )
            for n, (doc, paragraph) in enumerate(
                ((d, p) for d in self.documents for p in d.paragraphs), start=1
            )
        ]
        self.api_key = api_key
        handler = type("Handler", (_Handler,), {"services": self})
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def start(self) -> FakeServices:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def search(self, query: str) -> list[dict[str, Any]]:
        """SearXNG-shaped results: documents sharing the most words with `query` first
        (and, among those, the ones that use them most often)."""
        wanted = set(words(query))
        scored = []
        for doc in self.documents:
            shared = [w for w in wanted if doc.counts[w]]
            if shared:
                weight = sum(math.log1p(doc.counts[w]) for w in shared)
                scored.append((len(shared) + weight / (1 + weight), doc))
        scored.sort(key=lambda pair: (-pair[0], pair[1].url))
        return [
            {
                "url": doc.url,
                "title": doc.title,
                "content": _snippet(doc, wanted),
                "engine": "brief-samples",
                "engines": ["brief-samples"],
                "positions": [position],
                "score": round(score, 4),
                "category": "general",
            }
            for position, (score, doc) in enumerate(scored, start=1)
        ]

    def nearest(
        self, vector: list[float], limit: int, with_payload: bool | list[str]
    ) -> list[dict[str, Any]]:
        """Qdrant-shaped scored points, by cosine similarity (vectors are unit length)."""
        scored = sorted(
            ((sum(a * b for a, b in zip(vector, p.vector, strict=True)), p) for p in self.passages),
            key=lambda pair: (-pair[0], pair[1].id),
        )
        points = []
        for score, passage in scored[:limit]:
            point: dict[str, Any] = {"id": passage.id, "version": 0, "score": round(score, 6)}
            if with_payload is True:
                point["payload"] = dict(passage.payload)
            elif isinstance(with_payload, list):
                point["payload"] = {
                    k: v for k, v in passage.payload.items() if k in set(with_payload)
                }
            points.append(point)
        return points


@contextlib.contextmanager
def serving(
    pages_url: str, root: Path = SAMPLES, *, api_key: str | None = None
) -> Iterator[FakeServices]:
    """Started FakeServices, stopped on exit."""
    services = FakeServices(pages_url, root, api_key=api_key).start()
    try:
        yield services
    finally:
        services.stop()


def _index(root: Path, pages_url: str) -> list[SampleDocument]:
    documents = []
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.suffix not in _PAGE_SUFFIXES or path.name == "question.txt":
            continue
        url = f"{pages_url}/{path.name}"
        extracted = extract(path.read_bytes(), None, url)
        paragraphs = tuple(
            p for p in extracted.text.split("\n\n") if len(p.split()) >= _MIN_PASSAGE_WORDS
        )
        documents.append(
            SampleDocument(
                url=url,
                title=extracted.title or path.stem,
                paragraphs=paragraphs,
                counts=Counter(words(f"{extracted.title or ''} {extracted.text}")),
            )
        )
    return documents


def _snippet(doc: SampleDocument, wanted: set[str]) -> str:
    """The paragraph sharing the most words with the query, clipped."""
    best = max(doc.paragraphs, key=lambda p: len(wanted & set(words(p))), default="")
    if len(best) <= _SNIPPET_CHARS:
        return best
    return best[:_SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"


class _Handler(BaseHTTPRequestHandler):
    services: FakeServices
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo print what matters themselves."""

    def do_GET(self) -> None:  # the stdlib's name
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts == ["search"]:
            self._search({k: v[-1] for k, v in parse_qs(url.query).items()})
        elif len(parts) == 2 and parts[0] == "collections":
            if self._authorized():
                self._collection(parts[1])
        else:
            self._json(404, {"error": f"no such path {url.path}"})

    def do_POST(self) -> None:  # the stdlib's name
        started = time.perf_counter()
        try:
            request = self._body()  # read first, whatever the answer: the connection is reused
        except ValueError as exc:
            self._qdrant_error(400, f"Wrong input: {exc}")
            return
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) != 4 or parts[0] != "collections" or parts[2:] != ["points", "query"]:
            self._json(404, {"error": "no such path"})
            return
        if not self._authorized():
            return
        if parts[1] != COLLECTION:
            self._qdrant_error(404, f"Not found: Collection `{parts[1]}` doesn't exist!")
            return
        try:
            vector, limit, with_payload = _query(request)
        except ValueError as exc:
            self._qdrant_error(400, f"Wrong input: {exc}")
            return
        points = self.services.nearest(vector, limit, with_payload)
        elapsed = time.perf_counter() - started
        self._json(200, {"result": {"points": points}, "status": "ok", "time": elapsed})

    def _search(self, params: dict[str, str]) -> None:
        if params.get("format") != "json":
            self._send(403, b"Forbidden", "text/html")
            return
        query = params.get("q", "")
        if not query.strip():
            self._send(400, b"Bad Request: q is required", "text/plain")
            return
        results = self.services.search(query)
        self._json(
            200,
            {
                "query": query,
                "number_of_results": len(results),
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            },
        )

    def _collection(self, name: str) -> None:
        if name != COLLECTION:
            self._qdrant_error(404, f"Not found: Collection `{name}` doesn't exist!")
            return
        config = {"params": {"vectors": {"size": DIMENSIONS, "distance": "Cosine"}}}
        info = {"status": "green", "points_count": len(self.services.passages), "config": config}
        self._json(200, {"result": info, "status": "ok", "time": 0.0})

    def _authorized(self) -> bool:
        key = self.services.api_key
        if key is None or self.headers.get("api-key") == key:
            return True
        self._send(401, b"Must provide an API key or an Authorization bearer token", "text/plain")
        return False

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_REQUEST_BYTES:
            self.close_connection = True  # the unread body must not be taken for a request
            raise ValueError("request body too large")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            raise ValueError(f"request body is not JSON: {exc}") from exc

    def _qdrant_error(self, status: int, message: str) -> None:
        self._json(status, {"status": {"error": message}, "time": 0.0})

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _query(request: Any) -> tuple[list[float], int, bool | list[str]]:
    """The query vector, limit and payload selector of a Query API request."""
    if not isinstance(request, dict):
        raise ValueError("expected a JSON object")
    if request.get("using") is not None:
        raise ValueError(f"Not existing vector name error: {request['using']}")
    query = request.get("query")
    if isinstance(query, dict) and "nearest" in query:
        query = query["nearest"]
    if isinstance(query, dict) and isinstance(query.get("text"), str):
        model = query.get("model")
        if model != EMBEDDING_MODEL:
            raise ValueError(f"model {model!r} is not available here; use {EMBEDDING_MODEL!r}")
        vector = embed_text(query["text"])
    elif isinstance(query, list) and all(isinstance(x, int | float) for x in query):
        vector = [float(x) for x in query]
        if len(vector) != DIMENSIONS:
            raise ValueError(
                f"Vector dimension error: expected dim: {DIMENSIONS}, got {len(vector)}"
            )
    else:
        raise ValueError("query must be a vector, or a Document with text and model")
    limit = request.get("limit", 10)
    if not isinstance(limit, int) or limit < 0:
        raise ValueError("limit must be a non-negative integer")
    with_payload = request.get("with_payload", False)
    if not isinstance(with_payload, bool) and not (
        isinstance(with_payload, list) and all(isinstance(k, str) for k in with_payload)
    ):
        raise ValueError("with_payload must be a boolean or a list of fields")
    return vector, limit, with_payload
