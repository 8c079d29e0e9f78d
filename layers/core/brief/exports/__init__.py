"""A report as a file to share: self-contained HTML, PDF and DOCX, every `[n]` a link to its
source.

The Markdown report is the one source of all three: markdown-it renders it to HTML (raw HTML
in it stays text), fpdf2 lays that HTML out as PDF with DejaVu Sans (bundled in `fonts/`, with
its licence: Latin, Greek, Cyrillic, Arabic, Hebrew and more; a report with characters it lacks,
such as CJK, says so at the top of the PDF), and python-docx builds the DOCX from the same
parsed Markdown. The libraries load when an export is asked for, not with the API.
"""

from __future__ import annotations

import html
import io
import re
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from brief.models import Report

Format = Literal["md", "html", "pdf", "docx"]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MEDIA_TYPES: dict[Format, str] = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "docx": DOCX,
}
FORMATS: tuple[Format, ...] = ("md", "html", "pdf", "docx")

_CITATION = re.compile(r"(?<!\\)\[(\d{1,4})\](?!\()")
_CSS = """
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2230;
       max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; line-height: 1.25; } h2 { font-size: 1.25rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; } a { color: #2451b3; } blockquote { color: #5b6474; margin-left: 0;
padding-left: 1rem; border-left: 3px solid #d5dae3; } footer { color: #5b6474; font-size: .85rem;
margin-top: 3rem; }
"""


def export(report: Report, fmt: Format) -> bytes:
    """The report as `fmt`."""
    if fmt == "md":
        return report.markdown.encode()
    if fmt == "html":
        return to_html(report).encode()
    if fmt == "pdf":
        return to_pdf(report)
    return to_docx(report)


def linked(report: Report) -> str:
    """The report's Markdown with each `[n]` of a cited source a Markdown link to it."""
    urls = {c.n: c.url for c in report.citations}

    def link(match: re.Match[str]) -> str:
        url = urls.get(int(match.group(1)))
        if url is None:
            return match.group(0)
        return f"[\\[{match.group(1)}\\]](<{url.replace('>', '%3E')}>)"

    return _CITATION.sub(link, report.markdown)


def _body(report: Report) -> str:
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).render(linked(report)))


def to_html(report: Report) -> str:
    """One HTML file: the report, its links, its styles; nothing loaded from elsewhere."""
    title = html.escape(report.question)
    made = report.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<article>\n"
        f"{_body(report)}</article>\n<footer>A Brief report, written {made} "
        f"(job {html.escape(report.job_id)}).</footer>\n</body>\n</html>\n"
    )


def to_pdf(report: Report) -> bytes:
    """The report as PDF: headings, paragraphs, lists and links as in the HTML."""
    from fpdf import FPDF

    fonts = resources.files("brief.exports").joinpath("fonts")
    pdf = FPDF(format="A4")
    pdf.set_title(report.question)
    pdf.set_creator("Brief")
    for style, name in (
        ("", "DejaVuSans.ttf"),
        ("B", "DejaVuSans-Bold.ttf"),
        ("I", "DejaVuSans-Oblique.ttf"),
        ("BI", "DejaVuSans-BoldOblique.ttf"),
    ):
        with resources.as_file(fonts.joinpath(name)) as path:
            pdf.add_font("DejaVu", style, str(path))
    pdf.set_font("DejaVu", size=11)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    body = _body(report)
    unprintable = missing_glyphs(report.markdown, getattr(pdf.fonts["dejavu"], "cmap", {}))
    if unprintable:
        body = f"<blockquote>{html.escape(pdf_gap_note(unprintable))}</blockquote>{body}"
    pdf.write_html(body, font_family="DejaVu")
    return bytes(pdf.output())


def missing_glyphs(text: str, cmap: Any) -> str:
    """The characters of `text` the PDF's font cannot draw (CJK scripts, most emoji), in
    order of first use: fpdf2 would leave a blank where each one is."""
    seen: dict[str, None] = {}
    for char in text:
        if not char.isspace() and ord(char) not in cmap and char not in seen:
            seen[char] = None
    return "".join(seen)


def pdf_gap_note(missing: str) -> str:
    """What the PDF says when its font lacks some of the report's characters."""
    shown = ", ".join(f"U+{ord(c):04X}" for c in missing[:6]) + (
        ", ..." if len(missing) > 6 else ""
    )
    return (
        f"Note: this PDF's font has no glyphs for {len(missing)} of the report's characters "
        f"({shown}), so they are blank here. The HTML and Word exports show every character."
    )


def to_docx(report: Report) -> bytes:
    """The report as a Word document: headings, paragraphs, bullets, links."""
    from docx import Document
    from markdown_it import MarkdownIt

    document = Document()
    document.core_properties.title = report.question
    tokens = MarkdownIt("commonmark", {"html": False}).parse(linked(report))
    lists = 0  # how deep in bullet lists the current block is
    quoted = False
    style = "Normal"
    for token in tokens:
        if token.type == "heading_open":
            level = int(token.tag[1])
            style = "Title" if level == 1 else f"Heading {min(level - 1, 9)}"
            continue
        lists += {"bullet_list_open": 1, "bullet_list_close": -1}.get(token.type, 0)
        quoted = {"blockquote_open": True, "blockquote_close": False}.get(token.type, quoted)
        if token.type == "inline":
            _inline(document.add_paragraph(style=style), token.children or [])
        style = "List Bullet" if lists else "Intense Quote" if quoted else "Normal"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _inline(paragraph: Any, children: list[Any]) -> None:
    """Runs of text, bold and links (a Word hyperlink to its URL) into `paragraph`."""
    bold = False
    href: str | None = None
    for child in children:
        if child.type == "strong_open":
            bold = True
        elif child.type == "strong_close":
            bold = False
        elif child.type == "link_open":
            href = str(child.attrs.get("href", ""))
        elif child.type == "link_close":
            href = None
        elif child.type in ("text", "code_inline"):
            if href:
                _hyperlink(paragraph, child.content, href)
            else:
                paragraph.add_run(child.content).bold = bold
        elif child.type in ("softbreak", "hardbreak"):
            paragraph.add_run(" ")


def _hyperlink(paragraph: Any, text: str, url: str) -> None:
    """A clickable run: python-docx has no call for it, so the XML is built as Word writes it."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rel)
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    color = OxmlElement("w:color")
    color.set(qn("w:val"), "2451B3")
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.append(color)
    props.append(underline)
    run.append(props)
    body = OxmlElement("w:t")
    body.text = text
    body.set(qn("xml:space"), "preserve")
    run.append(body)
    link.append(run)
    paragraph._p.append(link)
