"""The extraction-cost measurement builds real HTML and PDF that extraction reads."""

from __future__ import annotations

from bench.extraction_cost import ms_per_mb, sample_html, sample_pdf
from brief.extraction import extract


def test_the_measured_documents_are_real_and_readable() -> None:
    html = sample_html(50_000)
    pdf = sample_pdf(60_000)
    assert len(html) >= 50_000
    assert pdf.startswith(b"%PDF-")
    assert "waggle dance" in extract(html, "text/html", "https://samples.test/").text
    assert "waggle dance" in extract(pdf, "application/pdf", "https://samples.test/").text
    assert ms_per_mb(html, "text/html", runs=1) > 0
