"""Content negotiation: which of two media types an `Accept` header ranks higher."""

from __future__ import annotations

from collections.abc import Sequence


def accept_ranks(accept: str) -> dict[str, float]:
    """Each media range of an `Accept` header with its q-value (1 when absent, 0 if garbled)."""
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranks[media.strip().lower()] = q
    return ranks


def prefers(accept: str, media: str, *, over: str = "application/json") -> bool:
    """Whether `accept` asks for `media` at least as much as for `over` (JSON, the default
    answer); a bare `*/*` leaves the default in place."""
    return preferred(accept, (media,), over=over) == media


def preferred(accept: str, medias: Sequence[str], *, over: str = "application/json") -> str | None:
    """The one of `medias` that `accept` ranks highest, if at least as high as `over` (ties
    go to the first); None when it asks for none of them that much."""
    ranks = accept_ranks(accept)
    default = max(ranks.get(over, 0.0), ranks.get("*/*", 0.0) - 0.001)
    best, best_q = None, 0.0
    for media in medias:
        q = ranks.get(media, 0.0)
        if q > best_q and q >= default:
            best, best_q = media, q
    return best
