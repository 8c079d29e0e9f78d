"""A case's report made in-process, without the stack: the same summarizer and the same
report assembly as the stages, for tuning the offline default quickly (`make eval` runs the
real chain)."""

from __future__ import annotations

from bench.eval.cases import Case
from brief.errors import SourceError
from brief.models import Citation
from brief.pipeline import check_answer, render_markdown
from brief.ports import SourceText, Summarizer


async def report(case: Case, summarizer: Summarizer) -> tuple[str, dict[int, str]]:
    """The report's Markdown, and each source's text by its number."""
    numbered, texts = await summaries(case, summarizer)
    return await report_of(case, summarizer, numbered), texts


async def report_of(case: Case, summarizer: Summarizer, numbered: list[SourceText]) -> str:
    """The report's Markdown from the sources' summaries (`summaries`)."""
    citations = [Citation(n=s.n, index=s.n - 1, url=s.url, title=s.title) for s in numbered]
    combined = await summarizer.combine(case.question, numbered)
    body, warnings = check_answer(combined.text, numbered)
    return render_markdown(case.question, body, citations, [], warnings=warnings)


async def summaries(case: Case, summarizer: Summarizer) -> tuple[list[SourceText], dict[int, str]]:
    """Each source's summary, numbered from 1 in the case's order (a source with nothing to
    summarize has none), and each source's text by its number."""
    texts: dict[int, str] = {}
    numbered: list[SourceText] = []
    for i, source in enumerate(case.sources):
        extracted = source.extracted()
        n = i + 1
        url = f"https://eval.test/{source.file}"
        texts[n] = extracted.text
        given = SourceText(n=n, title=extracted.title, url=url, text=extracted.text)
        try:
            summary = await summarizer.summarize(case.question, given)
        except SourceError:
            continue
        numbered.append(SourceText(n=n, title=extracted.title, url=url, text=summary.text))
    return numbered, texts
