"""Extraction: what a user would see go wrong if a page's text were read badly."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.resources import files

import pytest
from fpdf import FPDF
from fpdf.enums import EncryptionMethod
from PIL import Image

from brief.errors import UnsupportedContent
from brief.extraction import (
    PDF_DAMAGED,
    PDF_ENCRYPTED,
    PDF_NO_TEXT,
    PdfLimits,
    extract,
)

PAGE_URL = "https://news.example/science/bees/article.html"

ARTICLE = """<!doctype html>
<html><head>
<title>Scouts and swarms | Example News</title>
<script>var tracker = "TRACKING-CODE";</script>
<style>.x { color: red }</style>
</head>
<body>
<div class="cookie-banner">We use cookies. <a href="#">Accept cookies</a></div>
<header><a href="/">Example News logo</a></header>
<nav><a href="/">Home</a> <a href="/sport">Sport section</a></nav>
<div role="navigation"><a href="/weather">Weather menu</a></div>
<main>
  <h1>Scouts and swarms</h1>
  <p>Scout bees search the countryside for hollow trees while the swarm waits on a branch.</p>
  <p>Each scout that finds a good cavity returns and dances to advertise it to the others.</p>
  <p>When enough scouts gather at one cavity, the whole swarm warms up and flies there.</p>
  <p>The queen takes no part in the choice; she simply flies with the swarm to its new home.</p>
</main>
<aside>Sidebar: ten best garden gadgets</aside>
<footer>Copyright Example News. All rights reserved.</footer>
<script>document.write("INLINE-SCRIPT")</script>
</body></html>
"""


def html_page(body: str, head: str = "") -> bytes:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>".encode()


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


# Boilerplate and main content


def test_article_text_is_kept_and_boilerplate_dropped() -> None:
    result = extract(ARTICLE.encode(), "text/html; charset=utf-8", PAGE_URL)

    assert "Scout bees search the countryside for hollow trees" in result.text
    assert "flies with the swarm to its new home." in result.text
    for boilerplate in [
        "cookies",
        "Example News logo",
        "Sport section",
        "Weather menu",
        "garden gadgets",
        "All rights reserved",
        "TRACKING-CODE",
        "INLINE-SCRIPT",
        "color: red",
    ]:
        assert boilerplate not in result.text


def test_headings_list_items_quotes_and_cells_become_separate_paragraphs() -> None:
    body = """<article>
      <h2>Site criteria</h2>
      <p>Scouts   compare
         several   features.</p>
      <ul><li>Volume of about forty litres</li><li>A small entrance</li></ul>
      <blockquote>The swarm is a democracy.</blockquote>
      <table><tr><th>Feature</th><td>Entrance height</td></tr></table>
      <p>Line one<br>line two</p>
    </article>"""

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert paragraphs(result.text) == [
        "Site criteria",
        "Scouts compare several features.",
        "Volume of about forty litres",
        "A small entrance",
        "The swarm is a democracy.",
        "Feature",
        "Entrance height",
        "Line one",
        "line two",
    ]


def test_inline_markup_and_odd_whitespace_do_not_split_words() -> None:
    body = "<p>Honey<b>bees</b>\u00a0choose\u200b a <a href='/x'>new\n   home</a>.</p>"

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert result.text == "Honeybees choose a new home."


def test_main_content_is_preferred_over_the_rest_of_the_body() -> None:
    filler = "<p>Unrelated promotional copy sits outside the main element here.</p>"
    main = "<main>" + "<p>Scouts inspect each cavity for many minutes before dancing.</p>" * 6
    result = extract(html_page(filler + main + "</main>"), "text/html", PAGE_URL)

    assert "promotional copy" not in result.text
    assert "Scouts inspect each cavity" in result.text


def test_a_tiny_main_element_does_not_hide_the_real_content() -> None:
    body = "<main><p>Loading…</p></main>" + "<div><p>The swarm chose the larger box.</p></div>" * 20

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert "The swarm chose the larger box." in result.text
    assert "Loading" in result.text


def test_cookie_notice_and_sidebar_without_landmarks_are_dropped() -> None:
    body = (
        '<div id="cookie-consent">This site uses tracking technology. OK?</div>'
        '<div class="sidebar"><p>Recipes you might enjoy this weekend.</p></div>'
        '<div class="share-buttons">Share on social media</div>'
        + "<p>A swarm of ten thousand bees hung from the branch for two days.</p>"
        * 5
    )

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert "tracking technology" not in result.text
    assert "Recipes" not in result.text
    assert "Share on social" not in result.text
    assert "A swarm of ten thousand bees" in result.text


def test_a_page_wrapped_in_a_form_keeps_its_text() -> None:
    body = (
        '<form action="/postback"><input type="hidden" name="state">'
        + "<p>Scouts favour cavities with entrances near the floor.</p>" * 5
        + "</form>"
    )

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert "Scouts favour cavities" in result.text


def test_an_articles_own_header_is_kept_but_the_site_header_is_not() -> None:
    body = (
        "<header>Site banner with the logo</header>"
        "<article><header><h1>How swarms decide</h1><p>A short standfirst.</p></header>"
        + "<p>Scouts dance for the cavities they have found and inspected.</p>" * 5
        + "</article>"
    )

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert "Site banner" not in result.text
    assert paragraphs(result.text)[:2] == ["How swarms decide", "A short standfirst."]


def test_deeply_nested_markup_is_read_without_recursion_errors() -> None:
    depth = 5_000
    body = "<div>" * depth + "<p>Deep inside the page the text still counts.</p>" + "</div>" * depth

    result = extract(html_page(body), "text/html", PAGE_URL)

    assert result.text == "Deep inside the page the text still counts."


# Title and canonical URL


def test_title_prefers_og_title() -> None:
    head = '<meta property="og:title" content="Open Graph title"><title>Tab title</title>'

    result = extract(html_page("<h1>Heading</h1><p>Text.</p>", head), "text/html", PAGE_URL)

    assert result.title == "Open Graph title"


def test_title_drops_the_site_name_when_it_repeats_the_heading() -> None:
    result = extract(ARTICLE.encode(), "text/html", PAGE_URL)

    assert result.title == "Scouts and swarms"


def test_title_falls_back_to_the_first_heading() -> None:
    result = extract(html_page("<h1> The  heading </h1><p>Text.</p>"), "text/html", PAGE_URL)

    assert result.title == "The heading"


def test_canonical_url_is_resolved_against_the_page_url() -> None:
    head = '<link rel="Canonical" href="../bees/canonical.html">'

    result = extract(html_page("<p>Text.</p>", head), "text/html", PAGE_URL)

    assert result.canonical_url == "https://news.example/science/bees/canonical.html"


def test_canonical_url_honours_a_base_element() -> None:
    head = '<base href="https://mirror.example/docs/"><link rel="canonical" href="page">'

    result = extract(html_page("<p>Text.</p>", head), "text/html", PAGE_URL)

    assert result.canonical_url == "https://mirror.example/docs/page"


def test_a_canonical_link_that_is_not_http_is_ignored() -> None:
    head = '<link rel="canonical" href="javascript:alert(1)">'

    result = extract(html_page("<p>Text.</p>", head), "text/html", PAGE_URL)

    assert result.canonical_url is None


def test_no_canonical_link_means_none() -> None:
    assert extract(ARTICLE.encode(), "text/html", PAGE_URL).canonical_url is None


# Charsets


def test_latin1_page_is_decoded_with_the_header_charset() -> None:
    body = html_page("<p>Les abeilles éclaireuses dansent à leur retour.</p>").decode()

    result = extract(body.encode("latin-1"), "text/html; charset=ISO-8859-1", PAGE_URL)

    assert result.text == "Les abeilles éclaireuses dansent à leur retour."


def test_latin1_label_is_read_as_windows_1252_like_browsers_do() -> None:
    body = "<p>\u201cSwarms\u201d are choosy.</p>".encode("cp1252")

    result = extract(body, "text/html; charset=iso-8859-1", PAGE_URL)

    assert result.text == "\u201cSwarms\u201d are choosy."


def test_meta_charset_is_used_when_the_header_has_none() -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><p>Café bees.</p></body></html>'

    result = extract(page.encode("cp1252"), "text/html", PAGE_URL)

    assert result.text == "Café bees."


def test_http_equiv_charset_is_understood() -> None:
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-15">'
    page = f"<html><head>{meta}</head><body><p>Prix: 5 €.</p></body></html>"

    result = extract(page.encode("iso-8859-15"), "text/html", PAGE_URL)

    assert result.text == "Prix: 5 €."


def test_header_charset_wins_over_meta_charset() -> None:
    page = '<html><head><meta charset="windows-1251"></head><body><p>Ruche à cadres.</p></body>'

    result = extract(page.encode("utf-8"), "text/html; charset=utf-8", PAGE_URL)

    assert result.text == "Ruche à cadres."


def test_byte_order_mark_wins_over_a_wrong_declaration() -> None:
    page = "<html><body><p>Bienenschwarm über dem Garten.</p></body></html>"

    result = extract(page.encode("utf-16"), "text/html; charset=iso-8859-1", PAGE_URL)

    assert result.text == "Bienenschwarm über dem Garten."


def test_unknown_or_non_text_charset_falls_back_to_utf8() -> None:
    page = html_page("<p>Naïve scouts.</p>")

    for charset in ["no-such-charset", "base64"]:
        result = extract(page, f"text/html; charset={charset}", PAGE_URL)
        assert result.text == "Naïve scouts."


def test_undecodable_bytes_become_replacement_characters() -> None:
    result = extract(b"<p>Bees \xff\xfe swarm.</p>", "text/html", PAGE_URL)

    assert result.text == "Bees \ufffd\ufffd swarm."


# Plain text and sniffing


def test_plain_text_keeps_paragraphs_and_joins_wrapped_lines() -> None:
    body = b"Nest sites\r\n\r\nScouts look for\r\n  hollow trees.\r\n\r\n\r\n  Then they dance.  \n"

    result = extract(body, "text/plain; charset=utf-8", PAGE_URL)

    assert result.text == "Nest sites\n\nScouts look for hollow trees.\n\nThen they dance."
    assert result.title == "Nest sites"
    assert result.canonical_url is None


def test_plain_text_whose_first_line_is_a_sentence_has_no_title() -> None:
    result = extract(b"Scouts look for hollow trees.\n\nThen they dance.", "text/plain", PAGE_URL)

    assert result.title is None


def test_html_served_as_text_plain_is_read_as_html() -> None:
    result = extract(ARTICLE.encode(), "text/plain", PAGE_URL)

    assert "Scout bees search the countryside" in result.text
    assert "<p>" not in result.text
    assert "TRACKING-CODE" not in result.text


def test_plain_text_that_merely_mentions_a_tag_stays_text() -> None:
    body = b"Use the <p> element for paragraphs.\n\nScouts are not web developers."

    result = extract(body, "text/plain", PAGE_URL)

    assert result.text == "Use the <p> element for paragraphs.\n\nScouts are not web developers."


@pytest.mark.parametrize("content_type", [None, "", "application/octet-stream"])
def test_html_without_a_useful_content_type_is_sniffed(content_type: str | None) -> None:
    result = extract(ARTICLE.encode(), content_type, PAGE_URL)

    assert result.title == "Scouts and swarms"
    assert "TRACKING-CODE" not in result.text


def test_html_fragment_without_a_content_type_is_sniffed() -> None:
    result = extract(b"  <p>A fragment about <b>bees</b>.</p>", None, PAGE_URL)

    assert result.text == "A fragment about bees."


def test_text_without_a_content_type_is_read_as_text() -> None:
    result = extract(b"Scouts dance.\n\nSwarms fly.", None, PAGE_URL)

    assert result.text == "Scouts dance.\n\nSwarms fly."


def test_xhtml_served_as_xml_is_read_as_html() -> None:
    page = b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body><p>Bees.</p></body></html>'

    assert extract(page, "application/xml", PAGE_URL).text == "Bees."


# Refusals


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "text/plain", "image/jpeg"),
        (b"PK\x03\x04\x14\x00\x06\x00", "application/octet-stream", "application/zip"),
        (b"GIF89a\x01\x00", "image/gif", "image/gif"),
        (b'{"bees": 10000}', "application/json", "application/json"),
        (b"<rss><channel></channel></rss>", "application/rss+xml", "application/rss+xml"),
        (b"body { color: red }", "text/css", "text/css"),
    ],
)
def test_content_that_is_not_a_page_is_refused_with_its_type(
    body: bytes, content_type: str | None, reason: str
) -> None:
    with pytest.raises(UnsupportedContent) as caught:
        extract(body, content_type, PAGE_URL)

    assert caught.value.reason == f"unsupported content type {reason}"


def test_text_that_mentions_a_file_signature_is_not_refused() -> None:
    body = b"ID3 tags and the %PDF- header are how files announce their format."

    assert extract(body, "text/plain", PAGE_URL).text == body.decode()


def test_binary_bytes_under_a_text_label_are_refused() -> None:
    body = bytes(range(256)) * 8

    with pytest.raises(UnsupportedContent) as caught:
        extract(body, "text/plain", PAGE_URL)

    assert caught.value.reason == "the response is binary data, not text"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "text/html"),
        (b"", None),
        (b"   \n\n\t ", "text/plain"),
        (b"<html><head><title>Only a title</title></head><body></body></html>", "text/html"),
        (b"<html><body><script>render()</script><nav>Home</nav></body></html>", "text/html"),
    ],
)
def test_a_page_without_readable_text_is_refused(body: bytes, content_type: str | None) -> None:
    with pytest.raises(UnsupportedContent) as caught:
        extract(body, content_type, PAGE_URL)

    assert caught.value.reason == "the page has no readable text"


# The bundled demo sources

SAMPLES = files("brief_testing") / "samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if p.name[:2].isdigit())
BOILERPLATE = [
    "cookie",
    "Cookie",
    "consent",
    "All rights reserved",
    "dataLayer",
    "_paq",
    "fnConfig",
    "Subscribe",
    "newsletter",
    "Sign up",
    "sourdough",
    "hiking boots",
    "Monthly meetings",
    "Club shop",
    "plant sale",
    "Trending",
    "Front page",
    "Extension home",
    "Share this",
    "Related fact sheets",
    "Comments (3)",
    "honey shop",
    "Skip to content",
    "I agree",
    "Sponsored",
    "schema.org",
    "Privacy",
]


def test_there_are_five_samples_and_a_question() -> None:
    assert len(SAMPLE_NAMES) == 5
    assert (SAMPLES / "question.txt").read_text().strip().endswith("?")


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_each_sample_yields_substantial_text_without_boilerplate(name: str) -> None:
    content_type = "text/plain; charset=utf-8" if name.endswith(".txt") else "text/html"

    result = extract((SAMPLES / name).read_bytes(), content_type, f"https://samples.test/{name}")

    assert 500 <= len(result.text.split()) <= 1200
    assert result.title
    assert [b for b in BOILERPLATE if b in result.text] == []


def test_samples_have_distinct_titles_and_one_canonical_url() -> None:
    results = [
        extract((SAMPLES / name).read_bytes(), None, f"https://samples.test/{name}")
        for name in SAMPLE_NAMES
    ]

    assert len({r.title for r in results}) == len(results)
    assert [r.canonical_url for r in results if r.canonical_url] == [
        "https://samples.test/articles/scout-bee-home-criteria"
    ]


# PDF: documents generated here with fpdf2, so every case is a real PDF a writer produces.

PDF_URL = "https://papers.example/swarms.pdf"
SCOUTS = (
    "Scout bees search the countryside for hollow trees while the swarm waits on a branch. "
    "Each scout that finds a good cavity returns and dances to advertise it to the others."
)
LIFTOFF = (
    "When enough scouts gather at one cavity, the whole swarm warms its flight muscles and "
    "flies there together, guided by streaker bees that already know the way."
)
QUEEN = (
    "The queen takes no part in the choice; she simply flies with the swarm to its new home, "
    "surrounded by thousands of workers that keep her safe on the journey."
)


class Document(FPDF):
    """An fpdf2 document with an optional running header and page-number footer."""

    running_header: str | None = None
    numbered = False

    def header(self) -> None:
        if self.running_header:
            self.set_font("Helvetica", size=8)
            self.cell(0, 5, self.running_header, new_x="LMARGIN", new_y="NEXT")
            self.ln(4)

    def footer(self) -> None:
        if self.numbered:
            self.set_y(-15)
            self.set_font("Helvetica", size=8)
            self.cell(0, 10, f"Page {self.page_no()}", align="C")


def pdf(
    pages: list[list[str]],
    *,
    title: str | None = None,
    heading: str | None = None,
    running_header: str | None = None,
    numbered: bool = False,
    user_password: str | None = None,
) -> bytes:
    """A PDF with one list of paragraphs per page (a paragraph may hold explicit newlines)."""
    doc = Document()
    doc.running_header = running_header
    doc.numbered = numbered
    if title is not None:
        doc.set_title(title)
    if user_password is not None:
        doc.set_encryption(
            owner_password="owner",
            user_password=user_password,
            encryption_method=EncryptionMethod.RC4,
        )
    for number, paragraphs in enumerate(pages):
        doc.add_page()
        if heading and number == 0:
            doc.set_font("Helvetica", "B", 16)
            doc.multi_cell(0, 8, heading)
            doc.ln(3)
        doc.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            doc.multi_cell(0, 6, paragraph)
            doc.ln(3)
    return bytes(doc.output())


def test_pdf_text_keeps_paragraphs_and_joins_wrapped_lines() -> None:
    body = pdf([[SCOUTS, LIFTOFF]], title="How Swarms Choose a Home")

    result = extract(body, "application/pdf", PDF_URL)

    assert result.title == "How Swarms Choose a Home"
    assert paragraphs(result.text) == [SCOUTS, LIFTOFF]
    assert result.canonical_url is None


@pytest.mark.parametrize("metadata_title", [None, "", "Microsoft Word - draft3.docx", "x.pdf"])
def test_pdf_title_falls_back_to_its_first_line(metadata_title: str | None) -> None:
    body = pdf([[SCOUTS]], title=metadata_title, heading="How swarms choose a home")

    result = extract(body, "application/pdf", PDF_URL)

    assert result.title == "How swarms choose a home"
    assert paragraphs(result.text) == ["How swarms choose a home", SCOUTS]


def test_pdf_pages_are_read_in_order_without_running_headers_or_page_numbers() -> None:
    body = pdf(
        [[SCOUTS], ["Choosing a site", LIFTOFF], [QUEEN]],
        running_header="Journal of Apiculture 12 (2024)",
        numbered=True,
    )

    result = extract(body, "application/pdf", PDF_URL)

    assert paragraphs(result.text) == [SCOUTS, "Choosing a site", LIFTOFF, QUEEN]
    assert "Journal of Apiculture" not in result.text
    assert "Page" not in result.text


def test_a_running_header_that_changes_by_chapter_is_dropped() -> None:
    doc = Document()
    pages = [("1: Scouts", SCOUTS), ("1: Scouts", LIFTOFF), ("2: Queens", QUEEN), ("2: Queens", "")]
    for number, (chapter, text) in enumerate(pages, start=1):
        doc.running_header = f"Chapter {chapter} {number}"  # used as each page is added
        doc.add_page()
        doc.set_font("Helvetica", size=11)
        doc.multi_cell(0, 6, text or SCOUTS)

    result = extract(bytes(doc.output()), "application/pdf", PDF_URL)

    assert paragraphs(result.text) == [SCOUTS, LIFTOFF, QUEEN, SCOUTS]


def test_a_paragraph_that_runs_onto_the_next_page_stays_whole() -> None:
    body = pdf([[SCOUTS + " While they wait,"], ["the workers cluster around the queen. " + QUEEN]])

    result = extract(body, "application/pdf", PDF_URL)

    assert paragraphs(result.text) == [
        SCOUTS + " While they wait, the workers cluster around the queen. " + QUEEN
    ]


def test_a_word_hyphenated_across_lines_is_joined() -> None:
    body = pdf([["Scouts inspect every hol-\nlow tree before they dance for it."]])

    assert extract(body, "application/pdf", PDF_URL).text == (
        "Scouts inspect every hollow tree before they dance for it."
    )


@pytest.mark.parametrize(
    "content_type",
    ["application/pdf", "application/octet-stream", "text/html; charset=utf-8", "text/plain", None],
)
def test_a_pdf_is_read_whatever_its_label(content_type: str | None) -> None:
    result = extract(pdf([[SCOUTS]], title="Swarms"), content_type, PDF_URL)

    assert (result.title, result.text) == ("Swarms", SCOUTS)


def test_a_labelled_pdf_may_start_with_junk_before_its_signature() -> None:
    body = b"\r\n\x00junk\n" + pdf([[SCOUTS]])

    assert extract(body, "application/pdf; name=paper.pdf", PDF_URL).text == SCOUTS


def test_a_page_labelled_pdf_without_pdf_bytes_is_read_as_what_it_is() -> None:
    body = html_page("<p>This paper moved to a new address.</p>")

    assert extract(body, "application/pdf", PDF_URL).text == "This paper moved to a new address."


def blank_pdf() -> bytes:
    doc = FPDF()
    doc.add_page()
    return bytes(doc.output())


def scanned_pdf() -> bytes:
    """A page that is only a picture of text, as a scanner makes."""
    doc = FPDF()
    doc.add_page()
    doc.image(Image.new("L", (400, 200), 255), x=10, y=10, w=190)
    return bytes(doc.output())


@pytest.mark.parametrize("make", [blank_pdf, scanned_pdf])
def test_a_pdf_without_a_text_layer_is_refused(make: Callable[[], bytes]) -> None:
    with pytest.raises(UnsupportedContent) as caught:
        extract(make(), "application/pdf", PDF_URL)

    assert caught.value.reason == PDF_NO_TEXT == "the PDF has no text layer (a scanned document?)"


def test_a_pdf_that_needs_a_password_is_refused() -> None:
    with pytest.raises(UnsupportedContent) as caught:
        extract(pdf([[SCOUTS]], user_password="secret"), "application/pdf", PDF_URL)

    assert caught.value.reason == PDF_ENCRYPTED == "the PDF is encrypted and needs a password"


def test_a_pdf_encrypted_only_against_copying_is_read() -> None:
    body = pdf([[SCOUTS]], user_password="")

    assert extract(body, "application/pdf", PDF_URL).text == SCOUTS


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
        (b"%PDF-1.4\n1 0 obj", "text/html"),
        (b"%PDF-1.4\n1 0 obj", None),
        (b"%PDF-1.7\n" + bytes(range(256)) * 8, "application/octet-stream"),
        (pdf([[SCOUTS], [LIFTOFF]])[:1500], "application/pdf"),  # cut off mid-download
    ],
)
def test_a_damaged_pdf_is_refused(body: bytes, content_type: str | None) -> None:
    with pytest.raises(UnsupportedContent) as caught:
        extract(body, content_type, PDF_URL)

    assert caught.value.reason == PDF_DAMAGED == "the PDF is damaged and cannot be read"


def test_only_the_first_pages_of_a_long_pdf_are_read() -> None:
    pages = [[f"Chapter {n} tells how swarm number {n} chose its home."] for n in range(1, 6)]

    result = extract(pdf(pages), "application/pdf", PDF_URL, pdf_limits=PdfLimits(max_pages=2))

    assert paragraphs(result.text) == [
        "Chapter 1 tells how swarm number 1 chose its home.",
        "Chapter 2 tells how swarm number 2 chose its home.",
    ]


def test_a_pdf_that_cannot_be_read_in_time_is_refused_with_the_limit() -> None:
    limits = PdfLimits(time_budget_s=0)

    with pytest.raises(UnsupportedContent) as caught:
        extract(pdf([[SCOUTS]]), "application/pdf", PDF_URL, pdf_limits=limits)

    assert caught.value.reason == "the PDF could not be read within 0 s"


def test_reading_html_does_not_load_the_pdf_library() -> None:
    """Cold start: functions that never see a PDF must not pay for PDFium's import."""
    code = (
        "import sys; from brief.extraction import extract; "
        "extract(b'<p>Bees.</p>', 'text/html', 'https://a.test/'); "
        "print('pypdfium2' in sys.modules)"
    )
    run = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert run.stdout.strip() == "False"
