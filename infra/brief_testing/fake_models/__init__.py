"""A fake model server on loopback, for tests and benchmarks: no key, no internet, no cost.

Speaks three model APIs, streamed and whole:

    POST /v1/chat/completions           OpenAI-compatible (SSE `data:` chunks, `[DONE]`,
                                        the usage chunk when `stream_options.include_usage`)
    POST /v1/messages                   Anthropic Messages (named SSE events)
    POST /model/{id}/converse[-stream]  Amazon Bedrock Converse (AWS event stream frames)

Answers are deterministic and meaningful: the sentences of the material (inside `<source>`
or `<notes>`, else the whole prompt) that share the most words with the prompt's
`Question:` line, in their original order, each followed by the `[n]` markers it carried
or of the `[n] Title` block it came from. Usage counts words and punctuation marks (close
to real tokenizers on English) plus 4 per message; a model given a context window in
`context_tokens` refuses prompts that do not fit, as the real APIs do.

Misbehaviour, configurable at start and at run time (`faults`, `fail_next`, or
`POST /_fake/faults` from another process): 429 with Retry-After (a fraction of requests,
or whenever more than `max_concurrent` are in flight), 500, 529, slow answers, streams cut
mid-answer, and answers citing a source that was not given, chosen by a seeded RNG.
Per-model latency comes from `latency_s` (or an `x-fake-latency` request header).

`stats` counts requests, statuses, concurrency and the tokens of every completed answer
(what a provider would bill), so tests and benchmarks can check a client's accounting.

    with FakeModelServer(latency_s={"slow-model": 0.2}) as server:
        client = OpenAIChat(http, model="m", base_url=server.url + "/v1", ...)
"""

from brief_testing.fake_models.answers import answer_for, count_tokens
from brief_testing.fake_models.server import FakeModelServer, FaultKind, Faults, Stats

__all__ = ["FakeModelServer", "FaultKind", "Faults", "Stats", "answer_for", "count_tokens"]
