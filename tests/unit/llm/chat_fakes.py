"""An in-memory `ChatModel`: the fake server's answers, without HTTP, recording every call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from brief.llm.chat import Completion, OnToken
from brief.llm.errors import ModelRejected
from brief_testing.fake_models import answer_for, count_tokens


@dataclass
class Call:
    system: str
    prompt: str
    max_tokens: int
    input_tokens: int
    output_tokens: int


@dataclass
class FakeChat:
    """Answers like the fake server; refuses prompts over its window, as real APIs do.

    `answer` replaces the fake's answer (e.g. a model that pads to max_tokens); `errors`
    are raised by the next calls, in order.
    """

    name: str = "fake:chat"
    context_tokens: int = 8_192
    answer: Callable[[str, str, int], str] | None = None
    errors: list[Exception] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    async def complete(
        self, system: str, prompt: str, *, max_tokens: int, on_token: OnToken | None = None
    ) -> Completion:
        if self.errors:
            raise self.errors.pop(0)
        input_tokens = count_tokens(system) + count_tokens(prompt) + 8
        if input_tokens + max_tokens > self.context_tokens:
            raise ModelRejected(
                f"{self.name} refused the request (400): context length exceeded "
                f"({input_tokens} + {max_tokens} > {self.context_tokens})"
            )
        if self.answer is not None:
            text = self.answer(system, prompt, max_tokens)
        else:
            text, _, _ = answer_for(system, prompt, max_tokens=max_tokens)
        output_tokens = count_tokens(text)
        self.calls.append(Call(system, prompt, max_tokens, input_tokens, output_tokens))
        if on_token is not None:
            await on_token(text)
        return Completion(text, input_tokens, output_tokens, "end")


def padding(_: str, __: str, max_tokens: int) -> str:
    """A model that never shrinks anything: it always says as much as it may."""
    return " ".join(["Bees", "decide", "by", "quorum", "."] * (max_tokens // 5))


def pages(count: int, *, words_per_page: int = 450) -> str:
    """`count` pages of varied English prose about swarms, with paragraphs."""
    topics = ["scouts", "cavities", "dances", "quorum", "piping", "liftoff", "queens", "honey"]
    verbs = ["inspect", "compare", "report", "measure", "abandon", "favour", "signal", "count"]
    paragraphs = []
    sentence_no = 0
    for page in range(count):
        words = 0
        while words < words_per_page:
            sentences = []
            for _ in range(5):
                topic = topics[sentence_no % len(topics)]
                verb = verbs[(sentence_no * 3 + page) % len(verbs)]
                sentence = (
                    f"On page {page + 1} the {topic} {verb} site {sentence_no % 97} while "
                    f"observers note a volume of {(sentence_no * 13) % 80 + 10} litres and a "
                    f"distance of {(sentence_no * 7) % 900 + 100} metres."
                )
                sentences.append(sentence)
                words += len(sentence.split())
                sentence_no += 1
            paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)
