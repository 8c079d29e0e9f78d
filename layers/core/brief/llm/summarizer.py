"""`Summarizer` on chat models: map long sources in chunks, reduce many summaries in rounds.

summarize: a source that fits the map model's budget (context window less the prompt, the
answer and a safety margin) takes one call. A longer one is chunked on paragraph, sentence
and word boundaries; the chunks are summarized concurrently (within the rate limiter's
bound), and the notes merged: directly when they fit, otherwise in rounds that merge groups
of notes that fit, concurrently, until the rest fits.

combine: the reduce model sees numbered sources ("[n] Title (url)" and the summary, n being
each source's own number, with gaps where a source was not used) and is told to cite every
claim with [n]. Summaries that do not fit are collapsed the same way:
groups that fit are condensed concurrently, keeping their [n] markers, until the rest fits.
Markers for numbers that were not given are removed from every condensed group (an invented
[n] must not spread); the final answer's are left for the combine stage, which removes them
and tells the report's reader how many there were.

Neither loop can run away with the bill: each round must shrink the material, a round only
runs while fewer than `max_rounds` have, and after that (or when a round cannot shrink it)
the material is cut to fit with a note saying so, instead of failing the job. Every call
goes through the shared rate limiter and bounded retries, and every call's tokens and cost
are summed into the `Usage` returned with the text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random as _random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from brief.errors import PermanentError, RetryableError
from brief.llm import prompts
from brief.llm.chat import MAX_TOKENS, ChatModel, Completion
from brief.llm.citations import keep_citations, strip_citations
from brief.llm.errors import ModelRejected
from brief.llm.pricing import PriceTable
from brief.llm.ratelimit import RateLimiter
from brief.llm.retry import call_with_retries
from brief.llm.tokens import chunk, estimate_tokens
from brief.models import ModelRetry, Usage
from brief.ports import ModelText, OnModelRetry, OnText, SourceText

__all__ = ["LLMSummarizer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")

# Budget margins: a share of the window for estimate error, plus the chat format's framing.
SAFETY_SHARE = 0.05
FRAMING_TOKENS = 32
# Below this much room for material a model cannot do useful work: a configuration error.
MIN_ROOM_TOKENS = 256
# Tokens each item adds when listed in a prompt (separators, "Part i:").
ITEM_OVERHEAD = 8
# The smallest share of a window one item is cut to when everything must be cut to fit.
MIN_ITEM_TOKENS = 48

TRUNCATED_SOURCE = (
    "(Only part of this source could be summarized within the model's limits; "
    "{left_out} were left out.)"
)
TRUNCATED_REPORT = (
    "*Some source summaries were shortened to fit the model's context window; "
    "the answer may leave out details they contained.*"
)


@dataclass(frozen=True, slots=True)
class _Stage:
    model: ChatModel
    limiter: RateLimiter
    max_output_tokens: int


@dataclass(slots=True)
class _ModelWork:
    """One summarize or combine: its calls' usage, the rounds it took, whether it cut, and
    who hears of its calls' retryable failures."""

    usage: Usage = field(default_factory=Usage)
    rounds: int = 0
    cut: bool = False
    on_retry: OnModelRetry | None = None


class LLMSummarizer:
    """Summarizes with `map_model` and combines with `reduce_model` (they may be the same)."""

    def __init__(
        self,
        map_model: ChatModel,
        reduce_model: ChatModel,
        *,
        limiter_map: RateLimiter,
        limiter_reduce: RateLimiter,
        prices: PriceTable,
        max_output_tokens: int = 1024,
        reduce_output_tokens: int | None = None,
        max_rounds: int = 4,
        max_chunks: int = 64,
        overlap_tokens: int = 64,
        attempts: int = 4,
        retry_base_s: float = 0.5,
        retry_cap_s: float = 20.0,
        retry_max_wait_s: float = 60.0,
        throttle_budget_s: float = 60.0,
        variant: str = "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if max_rounds < 1 or max_chunks < 1 or attempts < 1:
            raise ValueError("max_rounds, max_chunks and attempts must be at least 1")
        self._map = _Stage(map_model, limiter_map, max_output_tokens)
        self._reduce = _Stage(
            reduce_model, limiter_reduce, reduce_output_tokens or max_output_tokens
        )
        self._prices = prices
        self._max_rounds = max_rounds
        self._max_chunks = max_chunks
        self._overlap = overlap_tokens
        self._attempts = attempts
        self._retry = (retry_base_s, retry_cap_s, retry_max_wait_s)
        self._throttle_budget_s = throttle_budget_s
        self._sleep = sleep
        self._random = random
        knobs = (
            map_model.context_tokens,
            self._map.max_output_tokens,
            reduce_model.context_tokens,
            self._reduce.max_output_tokens,
            max_rounds,
            max_chunks,
            overlap_tokens,
            variant,
        )
        fingerprint = hashlib.sha256(repr(knobs).encode()).hexdigest()[:6]
        self._name = f"{map_model.name}+{reduce_model.name}@{prompts.PROMPT_VERSION}.{fingerprint}"

    @property
    def name(self) -> str:
        """Map and reduce model, prompt version, and a digest of every setting that shapes
        the output (windows, output sizes, round and chunk caps, temperature)."""
        return self._name

    # ------------------------------------------------------------------ summarize (map)

    async def summarize(
        self, question: str, source: SourceText, *, on_retry: OnModelRetry | None = None
    ) -> ModelText:
        """What `source` says that bears on `question`, in as few calls as its length allows.

        `on_retry` hears of every call that failed in a way that may pass (the last too)."""
        run = _ModelWork(on_retry=on_retry)
        stage = self._map
        out = stage.max_output_tokens
        text = source.text.strip()
        room = self._room(
            stage,
            prompts.SUMMARIZE_SYSTEM,
            prompts.summarize_prompt(
                question, source, "", part=(self._max_chunks, self._max_chunks), words=9999
            ),
            out,
        )
        if estimate_tokens(text) <= room:
            summary = await self._call(
                stage,
                run,
                prompts.SUMMARIZE_SYSTEM,
                prompts.summarize_prompt(
                    question, source, text, part=None, words=prompts.words_for(out)
                ),
                out,
            )
        else:
            summary = await self._summarize_long(question, source, text, room, run)
        self._log("summarize", run)
        return ModelText(summary, run.usage)

    async def _summarize_long(
        self, question: str, source: SourceText, text: str, room: int, run: _ModelWork
    ) -> str:
        stage = self._map
        out = stage.max_output_tokens
        merge_room = self._room(
            stage,
            prompts.MERGE_SYSTEM,
            prompts.merge_prompt(question, source, [], words=9999),
            out,
        )
        note_tokens = max(MIN_ITEM_TOKENS, min(out, merge_room // 3))
        pieces = chunk(text, room, self._overlap)
        left_out = ""
        if len(pieces) > self._max_chunks:
            left_out = f"the last {len(pieces) - self._max_chunks} of {len(pieces)} parts"
            pieces = pieces[: self._max_chunks]
            run.cut = True
        count = len(pieces)

        async def notes_on(index: int, piece: str) -> str:
            prompt = prompts.summarize_prompt(
                question,
                source,
                piece,
                part=(index + 1, count),
                words=prompts.words_for(note_tokens),
            )
            return await self._call(stage, run, prompts.SUMMARIZE_SYSTEM, prompt, note_tokens)

        run.rounds = 1
        notes = await self._each(stage, list(enumerate(pieces)), lambda p: notes_on(*p))

        async def merge(group: list[str]) -> str:
            prompt = prompts.merge_prompt(
                question, source, group, words=prompts.words_for(note_tokens)
            )
            return await self._call(stage, run, prompts.MERGE_SYSTEM, prompt, note_tokens)

        notes, cut = await self._collapse(stage, run, notes, merge_room, merge, note_tokens)
        if cut and not left_out:
            left_out = "details of some parts"
        summary = await self._call(
            stage,
            run,
            prompts.MERGE_SYSTEM,
            prompts.merge_prompt(question, source, notes, words=prompts.words_for(out)),
            out,
        )
        if left_out:
            summary += "\n\n" + TRUNCATED_SOURCE.format(left_out=left_out)
        return summary

    # ------------------------------------------------------------------ combine (reduce)

    async def combine(
        self,
        question: str,
        summaries: Sequence[SourceText],
        *,
        on_retry: OnModelRetry | None = None,
        on_text: OnText | None = None,
    ) -> ModelText:
        """A Markdown answer that cites the given summaries by [n] (numbers it invents are
        left in, for the combine stage to count and remove); the final call's text goes to
        `on_text` as it streams (the condensing rounds before it are not the answer)."""
        run = _ModelWork(on_retry=on_retry)
        stage = self._reduce
        out = stage.max_output_tokens
        allowed = {s.n for s in summaries}
        items = [prompts.numbered(s, strip_citations(s.text.strip())) for s in summaries]
        final_room = self._room(
            stage, prompts.COMBINE_SYSTEM, prompts.combine_prompt(question, [], words=9999), out
        )
        condense_room = self._room(
            stage, prompts.CONDENSE_SYSTEM, prompts.condense_prompt(question, [], words=9999), out
        )
        condensed_tokens = max(MIN_ITEM_TOKENS, min(out, condense_room // 3))

        async def condense(group: list[str]) -> str:
            prompt = prompts.condense_prompt(
                question, group, words=prompts.words_for(condensed_tokens)
            )
            text = await self._call(stage, run, prompts.CONDENSE_SYSTEM, prompt, condensed_tokens)
            return keep_citations(text, allowed)[0]  # an invented [n] must not spread

        if _cost(items) > final_room:
            fitted = _fit_each(items, condense_room)
            run.cut = fitted != items  # a summary too long to condense even on its own
            items = fitted
            items, _ = await self._collapse(
                stage, run, items, final_room, condense, condensed_tokens, group_room=condense_room
            )
        answer = await self._call(
            stage,
            run,
            prompts.COMBINE_SYSTEM,
            prompts.combine_prompt(question, items, words=prompts.words_for(out)),
            out,
            on_text=on_text,
        )
        if run.cut:
            answer += "\n\n" + TRUNCATED_REPORT
        self._log("combine", run)
        return ModelText(answer, run.usage)

    async def follow_ups(
        self,
        root: str,
        question: str,
        notes: Sequence[str],
        count: int,
        *,
        on_retry: OnModelRetry | None = None,
    ) -> tuple[list[str], Usage]:
        """Up to `count` follow-up questions (deep research) from the combine model: what
        `notes`, the findings on `question`, leave open about `root`."""
        run = _ModelWork(on_retry=on_retry)
        stage = self._reduce
        out = min(stage.max_output_tokens, 60 * count)
        room = self._room(
            stage,
            prompts.FOLLOW_UPS_SYSTEM,
            prompts.follow_ups_prompt(root, question, [], count=count),
            out,
        )
        fitted = _fit_all([strip_citations(n.strip()) for n in notes], room)
        text = await self._call(
            stage,
            run,
            prompts.FOLLOW_UPS_SYSTEM,
            prompts.follow_ups_prompt(root, question, fitted, count=count),
            out,
        )
        self._log("follow_ups", run)
        return questions_in(text)[:count], run.usage

    # ------------------------------------------------------------------ shared machinery

    async def _collapse(
        self,
        stage: _Stage,
        run: _ModelWork,
        items: list[str],
        room: int,
        shrink: Callable[[list[str]], Awaitable[str]],
        shrunk_tokens: int,
        *,
        group_room: int | None = None,
    ) -> tuple[list[str], bool]:
        """`items` reduced until together they fit `room`; and whether anything was cut.

        Each round packs the items, in order, into groups that fit `group_room` and shrinks
        every group of two or more (and any single item longer than a shrunk one) at once.
        Stops after `max_rounds` rounds in all, or when a round would not shrink the total,
        and then cuts every item to an equal share of `room`.
        """
        group_room = group_room or room
        for _ in range(self._max_rounds + 1):  # bounded whatever the model answers
            total = _cost(items)
            if total <= room:
                return items, False
            groups = _pack(items, group_room)
            stuck = len(groups) == len(items) and all(
                estimate_tokens(i) <= shrunk_tokens for i in items
            )
            if stuck or run.rounds >= self._max_rounds:
                break
            run.rounds += 1

            async def shrink_group(group: list[str]) -> str:
                if len(group) == 1 and estimate_tokens(group[0]) <= shrunk_tokens:
                    return group[0]
                return await shrink(group)

            shrunk = await self._each(stage, groups, shrink_group)
            if _cost(shrunk) >= total:
                items = shrunk
                break
            items = shrunk
        run.cut = True
        log.warning("material still over budget after %d rounds; cutting it to fit", run.rounds)
        return _fit_all(items, room), True

    async def _call(
        self,
        stage: _Stage,
        run: _ModelWork,
        system: str,
        prompt: str,
        max_tokens: int,
        *,
        on_text: OnText | None = None,
    ) -> str:
        """One model call through the stage's rate limiter, with bounded retries; each
        attempt's text so far goes to `on_text` as it streams."""
        estimate = estimate_tokens(system) + estimate_tokens(prompt) + FRAMING_TOKENS
        limiter = stage.limiter
        model = stage.model

        throttled = False  # the last attempt was throttled (and its retry waits its Retry-After)

        async def attempt() -> Completion:
            nonlocal throttled
            written = ""

            async def piece(text: str) -> None:
                nonlocal written
                written += text
                if on_text is not None:
                    await on_text(written)

            try:
                async with limiter.slot(estimate + max_tokens, after_throttle=throttled) as slot:
                    completion = await model.complete(
                        system,
                        prompt,
                        max_tokens=max_tokens,
                        on_token=piece if on_text is not None else None,
                    )
                    slot.settle(completion.input_tokens + completion.output_tokens)
                    return completion
            except Exception as exc:
                throttled = bool(getattr(exc, "throttled", False))
                raise

        on_retry = run.on_retry

        async def failed(exc: RetryableError, number: int, retry_in_s: float | None) -> None:
            if on_retry is not None:
                await on_retry(_model_retry(model.name, exc, number, retry_in_s))

        base_s, cap_s, max_wait_s = self._retry
        completion = await call_with_retries(
            attempt,
            attempts=self._attempts,
            base_s=base_s,
            cap_s=cap_s,
            max_wait_s=max_wait_s,
            throttle_budget_s=self._throttle_budget_s,
            sleep=self._sleep,
            random=self._random,
            on_failure=failed if on_retry is not None else None,
        )
        run.usage += Usage(
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            calls=1,
            cost_usd=self._prices.cost(
                model.name, completion.input_tokens, completion.output_tokens
            ),
        )
        if completion.stop_reason == MAX_TOKENS:
            log.info("a model answer was cut at max_tokens", extra={"model": model.name})
        return completion.text.strip()

    async def _each(
        self, stage: _Stage, items: Sequence[T], fn: Callable[[T], Awaitable[U]]
    ) -> list[U]:
        """`fn` over `items` concurrently, in order, with at most as many tasks as the
        stage's limiter admits calls; the first failure cancels the rest (no money spent
        on a source that has already failed) and is raised as itself."""
        results: list[U | None] = [None] * len(items)
        queue = iter(enumerate(items))

        async def worker() -> None:
            for index, item in queue:
                results[index] = await fn(item)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(stage.limiter.concurrency, len(items))):
                    group.create_task(worker())
        except BaseExceptionGroup as failure:
            raise _first_error(failure) from None
        return [r for r in results if r is not None]

    def _room(self, stage: _Stage, system: str, scaffold: str, out: int) -> int:
        """Tokens left for material in a call whose prompt is `scaffold` plus material."""
        window = stage.model.context_tokens
        room = (
            window
            - estimate_tokens(system)
            - estimate_tokens(scaffold)
            - out
            - FRAMING_TOKENS
            - math.ceil(window * SAFETY_SHARE)
        )
        if room < MIN_ROOM_TOKENS:
            raise ModelRejected(
                f"{stage.model.name}'s context window ({window} tokens) leaves only {room} "
                f"tokens for source text after the prompt and {out} tokens of answer; "
                "raise the context window setting or lower max output tokens"
            )
        return room

    def _log(self, step: str, run: _ModelWork) -> None:
        usage = run.usage
        log.info(
            "model %s done",
            step,
            extra={
                "model": self._name,
                "calls": usage.calls,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": usage.cost_usd,
                "rounds": run.rounds,
                "cut": run.cut,
            },
        )


def _model_retry(
    name: str, exc: RetryableError, attempt: int, retry_in_s: float | None
) -> ModelRetry:
    """A failed call as a job reports it: `name` is `provider:model`."""
    provider, _, model = name.partition(":")
    status = getattr(exc, "status", None)
    return ModelRetry(
        provider=provider,
        model=model or provider,
        status=status if isinstance(status, int) else None,
        throttled=bool(getattr(exc, "throttled", False)),
        retry_after_s=exc.retry_after,
        retry_in_s=None if retry_in_s is None else round(retry_in_s, 3),
        attempt=attempt,
        error=str(exc),
    )


def _first_error(failure: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise for a failed fan-out: a permanent one if any (retrying the record
    cannot help), else the first."""
    leaves: list[BaseException] = []

    def collect(group: BaseExceptionGroup[BaseException]) -> None:
        for exc in group.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                collect(exc)
            else:
                leaves.append(exc)

    collect(failure)
    for exc in leaves:
        if isinstance(exc, PermanentError):
            return exc
    return leaves[0]


def _cost(items: Sequence[str]) -> int:
    return sum(estimate_tokens(i) + ITEM_OVERHEAD for i in items)


def _pack(items: list[str], room: int) -> list[list[str]]:
    """Consecutive groups that each fit `room`, about equal in size."""
    costs = [estimate_tokens(i) + ITEM_OVERHEAD for i in items]
    target = sum(costs) / max(1, math.ceil(sum(costs) / room))
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    for item, cost in zip(items, costs, strict=True):
        if current and (used + cost > room or used >= target):
            groups.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    if current:
        groups.append(current)
    return groups


def _truncate(text: str, max_tokens: int) -> str:
    if estimate_tokens(text) <= max_tokens:
        return text
    pieces = chunk(text, max(1, max_tokens - 2))
    return (pieces[0] if pieces else "") + " …"


def _fit_each(items: list[str], room: int) -> list[str]:
    """Each item cut, if need be, so that it fits `room` on its own."""
    return [_truncate(i, room - ITEM_OVERHEAD) for i in items]


def _fit_all(items: list[str], room: int) -> list[str]:
    """Items cut to equal shares so that together they fit `room`; when even the smallest
    useful share is too much, the last items are left out."""
    keep = max(1, min(len(items), room // (MIN_ITEM_TOKENS + ITEM_OVERHEAD)))
    items = items[:keep]
    share = room // len(items) - ITEM_OVERHEAD
    return [_truncate(i, share) for i in items]


_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def questions_in(text: str) -> list[str]:
    """The questions a model wrote one per line (list marks dropped; lines that are not
    questions, such as a preamble, left out; each once)."""
    found: list[str] = []
    for line in text.splitlines():
        question = " ".join(_LIST_MARK.sub("", line).split())
        if question.endswith("?") and len(question) > 3 and question not in found:
            found.append(question)
    return found
