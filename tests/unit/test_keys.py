"""The key schema: what a key's name says can be read back from it without a read, and the
state logic reads the same names the store writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from brief import keys
from brief.jobstore import state_from_keys

JOB = "0123456789abcdef0123456789abcdef"
AT = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_an_event_key_carries_its_time_kind_and_source() -> None:
    key = keys.event(JOB, AT, "summary_done", 3)

    assert key == f"jobs/{JOB}/events/{keys.micros(AT):016d}-summary_done-3.json"
    assert keys.event_name(key) == keys.EventName(keys.micros(AT), "summary_done", (3,))
    assert keys.EVENT_CURSOR.fullmatch(key.removeprefix(keys.events(JOB)))
    assert keys.event_name(keys.summary(JOB, 3)) is None


def test_events_written_as_one_name_every_source_in_their_key() -> None:
    key = keys.event(JOB, AT, "source_fetched", [0, 2, 11])

    assert key.endswith("-source_fetched-0_2_11.json")
    name = keys.event_name(key)
    assert name == keys.EventName(keys.micros(AT), "source_fetched", (0, 2, 11))
    assert name.index == 11  # "the latest step" names the last
    assert keys.EVENT_CURSOR.fullmatch(key.removeprefix(keys.events(JOB)))


def test_events_list_in_the_order_they_happened() -> None:
    times = [AT + timedelta(microseconds=n) for n in (5, 1_000_000, 0, 30)]
    listed = sorted(keys.event(JOB, t, "source_fetched", 0) for t in times)
    assert [keys.from_micros(n.micros) for k in listed if (n := keys.event_name(k))] == sorted(
        times
    )


def test_an_open_jobs_entry_names_its_job_and_when_it_was_created() -> None:
    key = keys.open_job(AT, JOB)

    assert keys.open_job_name(key) == (AT, JOB)
    assert keys.open_job_name(f"{key}.tmp") is None


def test_an_owners_list_is_newest_first() -> None:
    older = keys.owner_job("alice", AT, JOB)
    newer = keys.owner_job("alice", AT + timedelta(seconds=1), JOB)
    assert sorted([older, newer]) == [newer, older]
    assert older.startswith(keys.owner_jobs("alice"))
    assert not older.startswith(keys.owner_jobs("bob"))


def test_the_state_is_read_from_the_names_the_store_writes() -> None:
    def names(*written: str) -> set[str]:
        return {k.removeprefix(keys.job(JOB)) for k in written}

    assert state_from_keys(names(keys.request(JOB))) == "queued"
    started = keys.event(JOB, AT, "retrieval_started")
    assert state_from_keys(names(keys.request(JOB), started)) == "retrieving"
    assert state_from_keys(names(keys.retrieval(JOB))) == "summarizing"
    assert state_from_keys(names(keys.retrieval(JOB), keys.combine_claim(JOB))) == "combining"
    assert state_from_keys(names(keys.combine_claim(JOB), keys.report(JOB))) == "done"
    assert state_from_keys(names(keys.retrieval(JOB), keys.failed(JOB))) == "failed"
    assert state_from_keys(names(keys.cancelled(JOB))) == "cancelled"


def test_a_dead_message_id_is_made_safe_for_a_key() -> None:
    assert keys.dead("intake", "a/b c") == "dead/intake/a_b_c.json"
    assert keys.dead("intake", "x").startswith(keys.dead_queue("intake"))
