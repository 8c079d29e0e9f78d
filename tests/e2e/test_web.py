"""The web page in a real browser (Debian's headless Chromium) against the local stack.

What a person sees: they ask a question with sources, the sources' progress appears as the
job runs, and the report appears with its citations linking to the sources. Chromium is
driven by Playwright with the system's browser (`executable_path`); Playwright's own
browser downloads are never used. `make test` installs chromium; without it these skip.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pypdfium2  # type: ignore[import-untyped]
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from brief_local.stack import LocalStack, StackOptions, running_stack
from brief_testing.fake_models import FakeModelServer
from brief_testing.fake_services import FakeServices
from brief_testing.pages import SAMPLES, PageServer

from .conftest import fake_model_stage

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUESTION = (SAMPLES / "question.txt").read_text().strip()
TIMEOUT_MS = 30_000
# Assertions wait as long as actions do: Playwright's own 5 s for `expect` is less than a
# job takes on a machine that is running other work beside the suite.
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="chromium is not installed (`make test` installs it: apt-get install chromium)",
)

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    # The browser may resolve nothing but loopback: the test reaches no other host.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile (its --user-data-dir)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1100, "height": 1300},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A tab that fails the test on any script error or console error (a CSP violation too)."""
    tab = browser.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    tab.close()
    assert errors == []


def test_a_question_shows_live_progress_then_a_report_citing_its_sources(
    page: Page, stack: LocalStack, pages: PageServer, tmp_path: Path
) -> None:
    sources = pages.pages()[:3]
    broken = f"{pages.url}/status/404"
    page.goto(f"{stack.api_url}/")
    expect(page).to_have_title(re.compile("Brief"))

    page.get_by_role("textbox", name="Question", exact=True).fill(QUESTION)
    page.get_by_role("textbox", name=re.compile("^Sources")).fill(
        "\n".join([sources[0], broken, *sources[1:]])
    )
    page.get_by_role("button", name="Research").click()

    # Progress: every source is listed at once and each one's state follows the job.
    progress = page.locator("#job")
    expect(progress).to_be_visible()
    expect(progress.get_by_role("heading", name="Progress")).to_be_focused()
    items = page.locator("#source-list > li")
    expect(items).to_have_count(4)
    expect(page.locator("#event-log > li").first).to_contain_text("job created")
    expect(page.locator("#job-status")).to_have_attribute("aria-live", "polite")
    expect(items.filter(has_text="could not be used")).to_contain_text("404")
    expect(items.filter(has_text="could not be used")).to_contain_text("[2]")
    expect(page.locator("#source-list > li[data-state=summarized]")).to_have_count(3)
    expect(page.locator("#event-log > li[data-kind=report_ready]")).to_have_count(1)
    expect(page.locator("#job-status")).to_contain_text("Report ready")

    # The report: the question, findings citing [n], each citation a link to its source.
    report = page.locator("#report")
    expect(report).to_be_visible()
    expect(report.get_by_role("heading", name=QUESTION)).to_be_visible()
    citations = report.locator("a.cite")
    expect(citations.first).to_be_visible()
    hrefs = {citations.nth(i).get_attribute("href") for i in range(citations.count())}
    assert hrefs
    assert hrefs <= set(sources)
    expect(citations.first).to_have_text(re.compile(r"^\[\d\]$"))
    # The list of sources links each title to its source.
    first_source = report.get_by_role(
        "link", name="When a Colony Splits: What Happens During a Honeybee Swarm", exact=True
    )
    expect(first_source).to_have_attribute("href", sources[0])
    # Every source keeps the number the progress showed: the one not used is [2], with why.
    expect(report.locator("li").filter(has_text=broken)).to_contain_text("[2]")
    expect(report.locator("a.cite", has_text="[3]").first).to_have_attribute("href", sources[1])
    expect(page.locator("#report-heading")).to_be_focused()

    # The report as files to share, each opened by its own library.
    with page.expect_download() as pdf_download:
        report.get_by_role("button", name="PDF").click()
    pdf_path = tmp_path / "report.pdf"
    pdf_download.value.save_as(pdf_path)
    pdf = pypdfium2.PdfDocument(pdf_path)
    assert "honeybees" in pdf[0].get_textpage().get_text_range()
    with page.expect_download() as docx_download:
        report.get_by_role("button", name="Word").click()
    assert docx_download.value.suggested_filename.endswith(".docx")
    docx_path = tmp_path / "report.docx"
    docx_download.value.save_as(docx_path)
    document = docx.Document(str(docx_path))
    assert document.paragraphs[0].text == QUESTION
    links = {r.target_ref for r in document.part.rels.values() if "hyperlink" in r.reltype}
    assert links <= set(sources)
    assert links

    # My jobs lists it, done.
    mine = page.locator("#jobs-list > li").filter(has_text=QUESTION).first
    expect(mine).to_contain_text("done")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)


def ask(page: Page, api_url: str, sources: list[str], *, at_most: str | None = None) -> None:
    """Open the page, ask QUESTION of `sources` (summarizing `at_most` of them)."""
    page.goto(f"{api_url}/")
    page.get_by_role("textbox", name="Question", exact=True).fill(QUESTION)
    page.get_by_role("textbox", name=re.compile("^Sources")).fill("\n".join(sources))
    if at_most is not None:
        page.get_by_label("Summarize at most").select_option(at_most)
    page.get_by_role("button", name="Research").click()


def test_summarize_at_most_n_sources_shows_the_rest_as_skipped(
    page: Page, stack: LocalStack, pages: PageServer
) -> None:
    ask(page, stack.api_url, pages.pages()[:3], at_most="2")

    expect(page.locator("#event-log > li[data-kind=report_ready]")).to_have_count(1)
    skipped = page.locator("#source-list > li[data-state=skipped]")
    expect(skipped).to_have_count(1)
    expect(skipped).to_contain_text("not summarized (over the job's limit)")
    expect(page.locator("#report li").filter(has_text="at most 2 sources")).to_have_count(1)
    expect(page.locator("#tree-panel")).to_be_hidden()  # an ordinary job has no tree


@pytest.fixture(scope="module")
def search_stack(pages: PageServer) -> Iterator[LocalStack]:
    """A stack whose web searches go to the fake SearXNG over the sample pages."""
    services = FakeServices(pages.url).start()
    options = StackOptions(
        environment={
            "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
            "BRIEF_SEARCH_PROVIDER": "searxng",
            "BRIEF_SEARXNG_URL": services.url,
        },
        retry_after_s=0,
    )
    try:
        with running_stack(options) as stack:
            yield stack
    finally:
        services.stop()


def test_deep_research_shows_its_tree_of_questions_then_one_report_over_every_level(
    page: Page, search_stack: LocalStack, pages: PageServer, tmp_path: Path
) -> None:
    # Two of the sample pages: the follow-up searches are left the others to find.
    sources = pages.pages()[:2]
    page.goto(f"{search_stack.api_url}/")
    page.get_by_role("textbox", name="Question", exact=True).fill(QUESTION)
    page.get_by_role("textbox", name=re.compile("^Sources")).fill("\n".join(sources))
    per_level = page.get_by_label("Questions per level")
    deadline = page.get_by_label("Start no level after")
    budget = page.get_by_label("Model budget")
    for control in (per_level, deadline, budget):
        expect(control).to_be_disabled()  # they mean nothing without follow-up levels
    page.get_by_label("Follow-up levels").select_option(value="2")  # depth 2: one level more
    for control in (per_level, deadline, budget):
        expect(control).to_be_enabled()
    per_level.select_option("2")
    deadline.select_option(value="300")  # the model budget stays "no limit": not sent
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/jobs")) as posted:
        page.get_by_role("button", name="Research").click()
    assert posted.value.post_data_json == {
        "question": QUESTION,
        "sources": sources,
        "depth": 2,
        "breadth": 2,
        "max_seconds": 300,
    }

    # The tree: the job's own question, its two follow-up questions under it.
    progress = page.locator("#job")
    tree = progress.get_by_role("list", name="Questions followed")
    root = tree.locator(":scope > li")
    expect(root).to_have_count(1)
    expect(root).to_have_attribute("data-node", "1")
    expect(root.locator(":scope > .q")).to_have_text(QUESTION)
    follow_ups = root.locator(":scope > ul > li")
    expect(follow_ups).to_have_count(2)
    expect(follow_ups.nth(0)).to_have_attribute("data-node", "2.1")
    expect(follow_ups.nth(1)).to_have_attribute("data-node", "2.2")
    expect(page.locator("#event-log > li[data-kind=level_started]")).to_contain_text(
        "level 2: 2 follow-up questions"
    )

    # The report, once: written over both levels, the tree settled.
    expect(page.locator("#event-log > li[data-kind=report_ready]")).to_have_count(1)
    report = page.locator("#report")
    expect(report.get_by_role("heading", name="Questions followed")).to_be_visible()
    expect(root.locator(":scope > .found")).to_have_text("[1][2]")
    expect(tree.locator("li[data-state=searching]")).to_have_count(0)
    states = [follow_ups.nth(i).get_attribute("data-state") for i in range(2)]
    assert set(states) <= {"answered", "nothing"}, states
    assert "answered" in states  # the searches found pages the job was not given
    # Each number a follow-up shows is a source of the list, found by a search.
    found = follow_ups.locator(":scope > .found").all_inner_texts()
    numbers = [int(n) for text in found for n in re.findall(r"\[(\d+)\]", text)]
    assert numbers, found
    assert min(numbers) >= 3, found
    listed = page.locator("#source-list > li")
    for n in numbers:
        item = listed.filter(has=page.locator(".n", has_text=f"[{n}]"))
        expect(item).to_have_attribute("data-state", "summarized")
        assert item.get_by_role("link").get_attribute("href") not in sources
    cited = {a.get_attribute("href") for a in report.locator("a.cite").all()}
    assert cited - set(sources), cited  # the report cites what the follow-ups found
    page.screenshot(path=str(tmp_path / "deep.png"), full_page=True)

    # Opened again by its address, the job shows the same tree.
    address = page.url
    page.goto("about:blank")
    page.goto(address)
    expect(follow_ups).to_have_count(2)
    expect(root.locator(":scope > .found")).to_have_text("[1][2]")
    expect(page.locator("#report a.cite").first).to_be_visible()
    expect(tree.locator("li[data-state=searching]")).to_have_count(0)
    assert [follow_ups.nth(i).get_attribute("data-state") for i in range(2)] == states


@pytest.fixture(scope="module")
def writing_stack() -> Iterator[LocalStack]:
    """A stack whose combine model streams its answer a word every 50 ms (the fake model
    server's OpenAI API) and whose drafts are written every 0.3 s."""
    with FakeModelServer(api_keys=["sk-test"], token_delay_s=0.05) as models:
        options = StackOptions(
            environment={
                "BRIEF_ALLOWED_HOSTS": "127.0.0.1",
                "BRIEF_COMBINE_MODEL": json.dumps(fake_model_stage(models.url)),
                "BRIEF_REPORT_DRAFT_EVERY_S": "0.3",
            },
            retry_after_s=0,
        )
        with running_stack(options) as stack:
            yield stack


def test_the_report_text_grows_as_the_model_writes_it_then_the_report_replaces_it(
    page: Page, writing_stack: LocalStack, pages: PageServer
) -> None:
    ask(page, writing_stack.api_url, pages.pages()[:3])

    report = page.locator("#report")
    expect(report).to_have_attribute("data-draft", "true")
    expect(page.locator("#report-draft")).to_be_visible()
    # What a reader sees while the model writes: the same text, longer each time it changes.
    # (The state and the text are read together: the report may replace the draft between
    # two separate reads.)
    seen: list[str] = []
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        drafting, text = page.evaluate(
            """() => [document.getElementById("report").dataset.draft === "true",
                      document.getElementById("report-body").innerText]"""
        )
        if not drafting:
            break
        if not seen or text != seen[-1]:
            seen.append(text)
        page.wait_for_timeout(50)
    expect(report).to_have_attribute("data-draft", "false")  # the report replaced the draft
    assert page.locator("#event-log > li[data-kind=report_ready]").count() == 1
    drafts = [t for t in seen if t]
    assert len(drafts) >= 2, drafts  # it grew while the model wrote
    assert all(b.startswith(a) for a, b in itertools.pairwise(drafts)), drafts

    # Then the report: its heading, citations as links, the draft's note gone.
    expect(report.get_by_role("heading", name=QUESTION)).to_be_visible()
    expect(report.locator("a.cite").first).to_be_visible()
    expect(page.locator("#report-draft")).to_be_hidden()


def test_a_job_opened_by_its_address_replays_its_progress_and_report(
    page: Page, stack: LocalStack, pages: PageServer
) -> None:
    sources = pages.pages()[:2]
    page.goto(f"{stack.api_url}/")
    page.get_by_role("textbox", name="Question", exact=True).fill(QUESTION)
    page.get_by_role("textbox", name=re.compile("^Sources")).fill("\n".join(sources))
    page.get_by_role("button", name="Research").click()
    expect(page.locator("#report a.cite").first).to_be_visible()
    address = page.url
    assert re.search(r"#job=[0-9a-f]{32}$", address)

    page.goto("about:blank")
    page.goto(address)

    expect(page.locator("#job-question")).to_have_text(QUESTION)
    expect(page.locator("#source-list > li[data-state=summarized]")).to_have_count(2)
    expect(page.locator("#report a.cite").first).to_have_attribute("href", re.compile("^http"))


def test_the_search_box_adds_a_search_and_bad_input_is_explained(
    page: Page, stack: LocalStack
) -> None:
    page.goto(f"{stack.api_url}/")
    page.get_by_role("textbox", name="Question", exact=True).fill(QUESTION)
    page.get_by_role("textbox", name=re.compile("^Sources")).fill("not a web address")
    page.get_by_role("button", name="Research").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("is not a web address")
    expect(page.get_by_role("textbox", name=re.compile("^Sources"))).to_be_focused()

    page.get_by_role("textbox", name=re.compile("^Sources")).fill("")
    page.get_by_role("searchbox", name="Search the web for…").fill("honeybee swarms")
    page.get_by_label("results").select_option("3")
    page.get_by_role("button", name="Research").click()
    # The local stack configures no search provider: the job is accepted and ends failed.
    expect(page.locator("#source-list > li")).to_have_count(3)  # a slot per result asked for
    expect(page.locator("#source-list > li").first).to_contain_text("honeybee swarms")
    expect(page.locator("#job-status")).to_contain_text("failed")


def test_the_report_renderer_never_turns_text_into_markup(page: Page, stack: LocalStack) -> None:
    page.goto(f"{stack.api_url}/")

    result = page.evaluate(
        """() => {
            const markdown = [
              "# <img src=x onerror=alert(1)> heading",
              "- **bold <script>x()</script>** and [click](javascript:alert(1)) [1] [7]",
              "See <b>this</b> and https://example.org/page.html.",
            ].join("\\n");
            const citations = new Map([[1, {n: 1, url: "https://example.org/one", title: "One"}]]);
            const box = document.createElement("div");
            box.append(window.brief.renderMarkdown(markdown, citations));
            return {
              html: box.innerHTML,
              text: box.textContent,
              hrefs: [...box.querySelectorAll("a")].map((a) => a.getAttribute("href")),
              elements: [...box.querySelectorAll("*")].map((e) => e.tagName.toLowerCase()),
            };
        }"""
    )

    assert set(result["elements"]) <= {"h3", "ul", "li", "strong", "a", "p"}
    assert result["hrefs"] == ["https://example.org/one", "https://example.org/page.html"]
    assert "<img src=x onerror=alert(1)> heading" in result["text"]
    assert "[click]" not in result["text"]  # the link text stays, its javascript: URL does not
    assert "click" in result["text"]
    assert "[7]" in result["text"]  # a citation of no source stays plain text
    assert "&lt;script&gt;" in result["html"]


def test_the_report_shows_what_the_model_cost_and_nothing_when_none_was_called(
    page: Page, stack: LocalStack
) -> None:
    page.goto(f"{stack.api_url}/")

    texts = page.evaluate(
        """() => [
            window.brief.usageText(
              {calls: 6, input_tokens: 5210, output_tokens: 640, cost_usd: 0.0012},
              {summarize: {calls: 5, cost_usd: 0.0004}, combine: {calls: 1, cost_usd: 0.0008}},
            ),
            window.brief.usageText({calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0}, {}),
        ]"""
    )

    assert texts == [
        "Model: 6 calls, 5,210 tokens in, 640 out, about $0.0012 "
        "(summarize $0.0004, combine $0.0008)",
        "",
    ]


def test_the_api_docs_render_with_the_network_off(
    page: Page, stack: LocalStack, tmp_path: Path
) -> None:
    # Everything but the API itself is refused: a CDN asset would leave the page blank.
    origin = stack.api_url
    refused: list[str] = []

    def only_the_api(route: Any) -> None:
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_api)
    page.goto(f"{origin}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Brief")
    expect(page.locator(".opblock-summary-path", has_text="/jobs").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
    assert refused == []
