"""The offline default model (`summarizer`), over the text it reads (`text`) and how it ranks
what it reads (`scoring`)."""

from brief.extractive.summarizer import ExtractiveSummarizer, by_source
from brief.extractive.text import split_sentences

__all__ = ["ExtractiveSummarizer", "by_source", "split_sentences"]
