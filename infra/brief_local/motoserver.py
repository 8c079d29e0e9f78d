"""moto's server, without the directory scan it makes on every request.

moto's server finds each request's backend by asking whether the service's name is one of
its modules, and `moto.backends.list_of_moto_modules` answers by listing moto's package
directory and stat-ing each of its ~180 entries — twice a request. Profiled on this machine,
that was 45% of the server's time for an S3 GetObject. The list cannot change while the
process runs, so it is read once. `python -m brief_local.motoserver` takes moto.server's
arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable


def speed_up() -> None:
    """Read moto's module list once per process (idempotent; before the server starts)."""
    import moto.backends as backends

    listing: Callable[[], Iterable[str]] = backends.list_of_moto_modules
    if getattr(listing, "read_once", False):
        return
    modules = tuple(listing())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    list_of_moto_modules.read_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules


def main(argv: list[str] | None = None) -> None:
    """Run moto's server (same arguments as `python -m moto.server`)."""
    speed_up()
    from moto.server import main as serve

    serve(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
