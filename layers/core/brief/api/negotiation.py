"""Content negotiation: which of two media types an `Accept` header ranks higher."""

from __future__ import annotations


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
    ranks = accept_ranks(accept)
    wanted = ranks.get(media, 0.0)
    default = max(ranks.get(over, 0.0), ranks.get("*/*", 0.0) - 0.001)
    return wanted > 0 and wanted >= default
