"""The bundled evaluation set: loading a case, and finding its nuggets in a text.

A case is a folder under `bench/eval/cases/` with a `case.json`:

    {
      "question": "How do honeybees decide where to build a new nest?",
      "kind": "how",                      # how | why | compare | number | list
      "sources": [
        {"file": "scouts.html", "role": "on-topic"},   # on-topic | off-topic | contradicts
        {"file": "dance.html", "role": "on-topic",     # a file kept elsewhere in the
         "path": "infra/brief_testing/samples/03-the-waggle-dance-as-a-debate.html"},
        ...                                            # repository: `path`, from its root
      ],
      "nuggets": [
        {
          "id": "waggle-dance",
          "fact": "Scouts advertise a site with a waggle dance.",
          "match": [["waggle"], ["danc"]],
          "sources": ["scouts.html"]
        },
        ...
      ]
    }

A nugget is found in a text when one sentence of it contains, for every group of `match`,
at least one of the group's phrases. Phrases are compared word by word after stemming
(Snowball, English) and lowercasing, so "dances", "dancing" and "danced" all match "dance";
a phrase of several words must appear in that order, adjacent. Numbers lose their thousands
separators ("8,849" matches "8849").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from brief.extraction import ExtractedText, extract
from brief.extractive import split_sentences
from brief.extractive.text import stem  # Snowball, one stemmer per thread

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"

Kind = Literal["how", "why", "compare", "number", "list"]
Role = Literal["on-topic", "off-topic", "contradicts"]
KINDS: tuple[Kind, ...] = ("how", "why", "compare", "number", "list")
ROLES: tuple[Role, ...] = ("on-topic", "off-topic", "contradicts")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
}


@dataclass(frozen=True)
class Source:
    """One of a case's sources: its file, what it is to the question, and its text as Brief
    extracts it."""

    file: str
    path: Path
    role: Role

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.path.suffix]

    def extracted(self) -> ExtractedText:
        """The source's title and readable text, as Brief's own extraction reads them."""
        return extract(self.path.read_bytes(), self.content_type, f"https://eval.test/{self.file}")

    def text(self) -> str:
        """The source's readable text, as Brief's own extraction reads it."""
        return self.extracted().text


@dataclass(frozen=True)
class Nugget:
    """A fact a good answer states, how to recognise it, and which sources state it."""

    id: str
    fact: str
    match: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...]

    def found_in(self, text: str) -> bool:
        """Whether one sentence of `text` states this nugget (every group matches in it)."""
        return any(self.in_sentence(s) for s in split_sentences(text))

    def in_sentence(self, sentence: str) -> bool:
        words = stems(sentence)
        return all(any(_contains(words, stems(p)) for p in group) for group in self.match)


@dataclass(frozen=True)
class Case:
    """One question of the set."""

    slug: str
    question: str
    kind: Kind
    sources: tuple[Source, ...]
    nuggets: tuple[Nugget, ...]

    def source(self, file: str) -> Source:
        return next(s for s in self.sources if s.file == file)


class CaseError(ValueError):
    """A case.json that does not say what the set needs."""


def load(folder: Path) -> Case:
    """Read and check one case folder; CaseError names what is wrong."""
    raw = json.loads((folder / "case.json").read_text())
    slug = folder.name
    if raw.get("kind") not in KINDS:
        raise CaseError(f"{slug}: kind must be one of {KINDS}")
    sources = []
    for s in raw["sources"]:
        path = ROOT / s["path"] if "path" in s else folder / s["file"]
        if not path.is_file():
            raise CaseError(f"{slug}: no source file {path}")
        if path.suffix not in CONTENT_TYPES:
            raise CaseError(f"{slug}: {s['file']} is not .html, .txt or .pdf")
        if s.get("role") not in ROLES:
            raise CaseError(f"{slug}: {s['file']}: role must be one of {ROLES}")
        sources.append(Source(file=s["file"], path=path, role=s["role"]))
    files = {s.file for s in sources}
    nuggets = []
    for n in raw["nuggets"]:
        match = tuple(tuple(group) for group in n["match"])
        if not match or not all(match):
            raise CaseError(f"{slug}/{n['id']}: match needs at least one non-empty group")
        unknown = set(n["sources"]) - files
        if not n["sources"] or unknown:
            raise CaseError(f"{slug}/{n['id']}: sources must name the case's files ({unknown})")
        nuggets.append(Nugget(id=n["id"], fact=n["fact"], match=match, sources=tuple(n["sources"])))
    if len({n.id for n in nuggets}) != len(nuggets):
        raise CaseError(f"{slug}: nugget ids repeat")
    return Case(slug, raw["question"], raw["kind"], tuple(sources), tuple(nuggets))


def load_all(root: Path = CASES) -> list[Case]:
    """Every case of the set, in folder order."""
    return [load(f) for f in sorted(root.iterdir()) if (f / "case.json").is_file()]


def check(case: Case) -> list[str]:
    """What is wrong with a case's nuggets against its own sources: a nugget that no sentence
    of a source it names states, or one that an off-topic source states."""
    problems = []
    texts = {s.file: s.text() for s in case.sources}
    for n in case.nuggets:
        for file in n.sources:
            if not n.found_in(texts[file]):
                problems.append(f"{case.slug}/{n.id}: not found in {file}")
        for s in case.sources:
            if s.role == "off-topic" and n.found_in(texts[s.file]):
                problems.append(f"{case.slug}/{n.id}: found in off-topic {s.file}")
    return problems


_NUMBER = re.compile(r"(?<=\d),(?=\d{3}\b)")
_WORD = re.compile(r"[^\W_]+(?:[.'][^\W_]+)*")


def stems(text: str) -> tuple[str, ...]:
    """`text` as stemmed lowercase words (decimals such as "8.8" stay one word)."""
    words = _WORD.findall(_NUMBER.sub("", text.lower().replace("\u2019", "'")))
    return tuple(stem(w.removesuffix("'s")) for w in words)


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def main() -> int:
    """`python -m bench.eval.cases`: check every case (what a case's author runs)."""
    problems: list[str] = []
    for case in load_all():
        problems += check(case)
        print(f"{case.slug}: {len(case.sources)} sources, {len(case.nuggets)} nuggets")
    print("\n".join(problems) or "every nugget is stated by its sources, none by an off-topic one")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
