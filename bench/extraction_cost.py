"""What extraction costs per MB of HTML and of PDF: `python -m bench.extraction_cost`.

Builds about 1 MB of each from the bundled sample pages (the PDF with fpdf2, a dev
dependency), extracts each several times and prints the median in ms per MB. Extraction runs
on the research function's CPU, so its cost per MB bounds how much text one job may pull.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from brief.extraction import extract
from brief_testing.pages import SAMPLES

MB = 1_000_000


def sample_html(size: int = MB) -> bytes:
    """The sample pages repeated to `size` bytes, each a whole HTML document's body."""
    pages = [p.read_bytes() for p in sorted(SAMPLES.glob("*.html"))]
    bodies = [p.split(b"<body", 1)[1].split(b">", 1)[1].rsplit(b"</body>", 1)[0] for p in pages]
    parts: list[bytes] = [b"<!doctype html><html><head><title>Samples</title></head><body>"]
    total = 0
    while total < size:
        for body in bodies:
            parts.append(b"<article>" + body + b"</article>")
            total += len(body)
    parts.append(b"</body></html>")
    return b"".join(parts)


def sample_pdf(size: int = MB) -> bytes:
    """A PDF of the samples' text, pages added until the file reaches `size` bytes."""
    from fpdf import FPDF

    text = extract(sample_html(60_000), "text/html", "https://samples.test/").text
    text = text.encode("latin-1", "replace").decode("latin-1")

    def build(pages: int) -> bytes:
        pdf = FPDF()
        pdf.set_font("Helvetica", size=10)
        pdf.set_compression(False)  # a page holds ~3 KB of text, like a text-heavy PDF
        for page in range(pages):
            start = page * 3000 % max(1, len(text) - 3000)
            pdf.add_page()
            pdf.multi_cell(0, 5, text[start : start + 3000])
        return bytes(pdf.output())

    probe = len(build(20))
    return build(max(1, round(20 * size / probe)))


def ms_per_mb(body: bytes, content_type: str, runs: int) -> float:
    """The median time to extract `body`, in ms per MB of input."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        extract(body, content_type, "https://samples.test/doc")
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000 / (len(body) / MB)


def main(argv: list[str] | None = None) -> int:
    """Print the cost of each kind."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    kinds: list[tuple[str, Callable[[], bytes], str]] = [
        ("HTML", sample_html, "text/html; charset=utf-8"),
        ("PDF", sample_pdf, "application/pdf"),
    ]
    for name, build, content_type in kinds:
        body = build()
        cost = ms_per_mb(body, content_type, args.runs)
        print(f"{name:<5} {len(body) / MB:5.2f} MB  {cost:7.1f} ms/MB (median of {args.runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
