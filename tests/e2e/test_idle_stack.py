"""An idle local stack stays idle: each poller makes one long poll per wait, not a request a
second (24 pollers polling every second kept `brief local` at 13% of a core).

Counted, not timed: on a busy machine the requests only get fewer.
"""

from __future__ import annotations

import time

from brief_local.stack import POLL_WAIT_S, StackOptions, running_stack

WINDOW_S = 6.0


def test_an_idle_stacks_pollers_long_poll_and_make_few_requests() -> None:
    with running_stack(StackOptions()) as stack:
        pollers = sum(mapping.pollers for mapping in stack.mappings)
        assert pollers > 0
        assert {mapping.wait_s for mapping in stack.mappings} == {POLL_WAIT_S}
        assert POLL_WAIT_S == 20  # SQS's longest long poll, as Lambda's pollers make them
        before = sum(mapping.receives for mapping in stack.mappings)
        time.sleep(WINDOW_S)
        made = sum(mapping.receives for mapping in stack.mappings) - before
        assert sum(mapping.invocations for mapping in stack.mappings) == 0  # idle indeed

    # Within the window each poller ends at most one poll and starts the next: two requests
    # at most. Polling every second would have made six each.
    assert made <= 2 * pollers, f"{made} receives by {pollers} idle pollers in {WINDOW_S:g} s"
