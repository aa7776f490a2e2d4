"""Pure pieces: NOTIFY chunking, rollup grouping, the bounded inbox, partition weeks."""

import threading
import time
from datetime import UTC, datetime, timedelta

from ingest.housekeeping import group_rollup_ranges
from ingest.inbound import ClearedStatus
from ingest.inbox import Delivery, Inbox
from ingest.partitions import week_start
from ingest.subscriber import RECEIVE_MAXIMUM, receive_maximum_for
from telemon.store.notify import MAX_PAYLOAD_BYTES, notification_payloads, parse_notification


def test_notifications_are_chunked_under_the_postgres_limit_and_cover_every_id_once():
    ids = range(10**12, 10**12 + 5000)
    payloads = notification_payloads([*ids, *ids])
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in payloads)
    assert [i for p in payloads for i in parse_notification(p)] == list(ids)
    assert notification_payloads([]) == []


def test_rollup_spans_are_merged_per_patient_and_grouped_by_hours():
    t = datetime(2026, 11, 18, 9, 40, tzinfo=UTC)
    queued = [
        (1, t, t.replace(minute=50)),
        (1, t.replace(hour=8), t),
        (2, t.replace(hour=8, minute=1), t.replace(minute=5)),
        (3, t, t),
    ]
    assert group_rollup_ranges(queued) == {
        (t.replace(hour=8, minute=0), t.replace(hour=10, minute=0)): [1, 2],
        (t.replace(minute=0), t.replace(hour=10, minute=0)): [3],
    }


def _delivery() -> Delivery:
    return Delivery(ClearedStatus("t", b"", "gw"), 1, 1, 1, time.monotonic())


def test_inbox_blocks_the_producer_when_full_and_releases_it_when_drained():
    inbox = Inbox(capacity=3)
    for _ in range(3):
        inbox.put(_delivery())
    blocked = threading.Thread(target=inbox.put, args=(_delivery(),))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive() and inbox.depth == (3, 3)
    assert len(inbox.take_batch(max_weight=2, max_wait=0, idle_wait=0)) == 2
    blocked.join(2)
    assert not blocked.is_alive() and inbox.depth == (2, 2)


def test_inbox_batch_closes_at_its_deadline_and_after_close_refuses_new_work():
    inbox = Inbox(capacity=100)
    inbox.put(_delivery())
    started = time.monotonic()
    assert len(inbox.take_batch(max_weight=10, max_wait=0.1, idle_wait=1)) == 1
    assert 0.05 < time.monotonic() - started < 1
    inbox.close()
    assert inbox.put(_delivery()) is False
    assert inbox.take_batch(max_weight=10, max_wait=1, idle_wait=1) == []


def test_a_batch_closes_as_soon_as_its_weight_arrives_not_at_its_deadline():
    inbox = Inbox(capacity=100)
    inbox.put(_delivery())

    def fill() -> None:
        time.sleep(0.1)
        for _ in range(4):
            inbox.put(_delivery())

    filler = threading.Thread(target=fill)
    filler.start()
    started = time.monotonic()
    batch = inbox.take_batch(max_weight=5, max_wait=30, idle_wait=1)
    filler.join()
    assert len(batch) == 5 and time.monotonic() - started < 10
    assert inbox.depth == (0, 0)


def test_a_batch_larger_than_the_inbox_closes_when_the_inbox_is_full():
    inbox = Inbox(capacity=3)
    producer = threading.Thread(target=lambda: [inbox.put(_delivery()) for _ in range(4)])
    producer.start()
    started = time.monotonic()
    first = inbox.take_batch(max_weight=10, max_wait=30, idle_wait=5)
    # Full before the batch's weight: closed then (not at its 30 s deadline), so the producer,
    # blocked on the fourth delivery, gets room again.
    assert len(first) == 3 and time.monotonic() - started < 10
    producer.join(5)
    assert not producer.is_alive() and inbox.depth == (1, 1)


def test_receive_maximum_leaves_room_for_the_next_batch_while_one_is_written():
    assert receive_maximum_for(5000) == 10_000
    assert receive_maximum_for(100) == RECEIVE_MAXIMUM
    assert receive_maximum_for(50_000) == 65_535  # MQTT's two-byte field


def test_partition_week_starts_on_monday_utc():
    assert week_start(datetime(2026, 11, 22, 23, 59, tzinfo=UTC)) == datetime(
        2026, 11, 16, tzinfo=UTC
    )


def test_week_start_agrees_with_the_calendar_across_years():
    for day in range(0, 3000, 13):
        ts = datetime(2018, 1, 1, 12, tzinfo=UTC) + timedelta(days=day, minutes=day)
        start = week_start(ts)
        assert start.weekday() == 0 and start.time() == datetime.min.time()
        assert timedelta(0) <= ts - start < timedelta(days=7)


def test_a_dead_letter_detail_quoting_a_nul_or_a_lone_surrogate_stays_storable():
    from ingest.deadletters import printable

    assert printable("metric 'a\x00b' or '\ud800'") == "metric 'a\\x00b' or '\\ud800'"
    assert printable("è normal") == "è normal"


def test_remembered_json_dumps_what_json_dumps_does_and_remembers_flat_objects_only():
    import json

    from ingest.store import RememberedJson

    dumps = RememberedJson(limit=2)
    for obj in (
        {"device_kind": "pulse_oximeter", "source": "continuous"},
        {"source": "continuous", "device_kind": "pulse_oximeter"},  # other order, other text
        {"nested": {"a": [1, 2]}},  # not flat: dumped every time
        ["a", 1],
        {"third": "beyond the limit"},
    ):
        assert dumps(obj) == dumps(obj) == json.dumps(obj).encode()
    assert len(dumps._known) == 2
