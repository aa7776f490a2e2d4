import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.outbox import Outbox
from telemon.observation import Observation

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def reading(i: int, *, continuous: bool = False) -> Observation:
    return Observation(
        gateway_id="gw-0001",
        seq=0,
        device_id="C0:FF:EE:00:00:01",
        patient_id="P0001",
        metric="spo2",
        value=90 + i % 10,
        unit="%",
        measured_at=T0 + timedelta(seconds=i),
        context={"source": "continuous"} if continuous else {},
    )


def test_sequence_numbers_are_assigned_in_order_and_survive_reopening(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001")
    first = outbox.append([reading(i) for i in range(3)])
    assert [o.seq for o in first] == [1, 2, 3]
    outbox.remove([1, 2, 3])
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db", "gw-0001")
    assert [o.seq for o in reopened.append([reading(4)])] == [4]  # never reused after removal
    assert [(o.seq, o.value) for o in reopened.peek(10)] == [(4, 94.0)]
    assert reopened.stats().depth == 1


def test_peek_from_a_sequence_number_and_remove(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001")
    outbox.append([reading(i) for i in range(10)])
    assert [o.seq for o in outbox.peek(3, from_seq=5)] == [5, 6, 7]
    assert outbox.remove([5, 6, 7, 99]) == 3
    assert [o.seq for o in outbox.peek(100)] == [1, 2, 3, 4, 8, 9, 10]
    assert outbox.peek(1)[0] == replace(reading(0), seq=1)


def test_an_outbox_cannot_change_owner(tmp_path):
    Outbox(tmp_path / "outbox.db", "gw-0001").close()
    with pytest.raises(ValueError, match="belongs to gateway 'gw-0001'"):
        Outbox(tmp_path / "outbox.db", "gw-0002")


def test_when_full_only_the_oldest_continuous_samples_are_evicted(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001", max_entries=10)
    outbox.append([reading(i) for i in range(4)])  # spot readings: seq 1-4
    outbox.append([reading(i, continuous=True) for i in range(6)])  # seq 5-10
    outbox.append([reading(i, continuous=True) for i in range(3)])  # seq 11-13: 3 too many
    kept = [o.seq for o in outbox.peek(100)]
    assert kept == [1, 2, 3, 4, 8, 9, 10, 11, 12, 13]
    # Spot readings are never refused nor evicted: more continuous samples make room.
    outbox.append([reading(i) for i in range(5)])  # seq 14-18
    assert [o.seq for o in outbox.peek(100)] == [1, 2, 3, 4, 13, 14, 15, 16, 17, 18]
    stats = outbox.stats()
    assert (stats.depth, stats.evicted, stats.last_seq) == (10, 8, 18)


def test_the_bound_counts_removals_evictions_and_what_a_reopened_outbox_holds(tmp_path):
    # The depth is kept in step rather than counted at every append: after acknowledged
    # removals the cap leaves room again, and a reopened outbox counts what it already holds.
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001", max_entries=5)
    outbox.append([reading(i, continuous=True) for i in range(5)])  # seq 1-5
    outbox.remove([1, 2])
    outbox.append([reading(i, continuous=True) for i in range(2)])  # seq 6-7: fits
    assert [o.seq for o in outbox.peek(100)] == [3, 4, 5, 6, 7]
    assert outbox.stats().evicted == 0
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db", "gw-0001", max_entries=5)
    reopened.append([reading(8, continuous=True)])  # seq 8: one too many
    assert [o.seq for o in reopened.peek(100)] == [4, 5, 6, 7, 8]
    reopened.remove([4, 5, 99])  # 99 was never there: not counted
    reopened.append([reading(i, continuous=True) for i in range(3)])  # seq 9-11: 1 too many
    assert [o.seq for o in reopened.peek(100)] == [7, 8, 9, 10, 11]
    stats = reopened.stats()
    assert (stats.depth, stats.evicted) == (5, 2)


WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from gateway.outbox import Outbox
from telemon.observation import Observation

outbox = Outbox(Path(sys.argv[1]), "gw-0001")
i = 0
while True:
    batch = [Observation(gateway_id="gw-0001", seq=0, device_id="d1", patient_id="P0001",
                         metric="pulse_rate", value=60 + (i + k) % 40, unit="/min",
                         measured_at=datetime.now(UTC)) for k in range(5)]
    stored = outbox.append(batch)
    i += 5
    print(stored[-1].seq, flush=True)
"""


def test_a_power_cut_mid_write_loses_nothing_committed(tmp_path):
    """SIGKILL a writer at random moments: every append it reported is on disk, in order."""
    path = tmp_path / "outbox.db"
    last_reported = 0
    for round_ in range(5):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first = writer.stdout.readline()  # writing has begun
        time.sleep(0.05 + 0.07 * round_)
        writer.send_signal(signal.SIGKILL)
        reported = [int(line) for line in (first + writer.communicate()[0]).split()]
        last_reported = reported[-1]
        outbox = Outbox(path, "gw-0001")
        seqs = [o.seq for o in outbox.peek(10**7)]
        outbox.close()
        assert seqs == list(range(1, len(seqs) + 1))  # contiguous: no gap, no duplicate
        assert seqs[-1] >= last_reported  # everything acknowledged to the caller survived


def test_state_is_written_in_the_same_transaction_as_the_readings(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001")
    outbox.append([reading(1)], state={"glucose_seq:AA": "7"})
    outbox.append([], state={"glucose_seq:BB": "3"})  # a record with no storable value
    assert outbox.state("glucose_seq:") == {"glucose_seq:AA": "7", "glucose_seq:BB": "3"}
    assert outbox.state("other:") == {}
    with pytest.raises(AttributeError):  # fails mid-transaction: nothing of the call is kept
        outbox.append([reading(2), "not an observation"], state={"glucose_seq:AA": "8"})
    assert outbox.state("glucose_seq:")["glucose_seq:AA"] == "7"
    assert outbox.stats().depth == 1


def _identified(i: int) -> Observation:
    return replace(reading(i), identifier=f"{i:032x}")


def test_a_record_sent_again_is_dropped_by_identifier_even_after_reopening(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001", identifiers_kept=3)
    stored = outbox.append([_identified(1), _identified(2), reading(3)])
    assert [o.seq for o in stored] == [1, 2, 3]
    outbox.close()

    outbox = Outbox(tmp_path / "outbox.db", "gw-0001", identifiers_kept=3)
    # The device's memory again, plus one new record and one twice in the same batch.
    again = outbox.append(
        [_identified(1), _identified(2), _identified(4), _identified(4)],
        state={"glucose_seq:AA": "4"},
    )
    assert [(o.seq, o.identifier) for o in again] == [(4, f"{4:032x}")]
    assert outbox.stats().duplicates == 3
    assert outbox.state("glucose_seq:") == {"glucose_seq:AA": "4"}  # written all the same
    # Readings without identifier (no device stamp) are never taken for one another.
    assert len(outbox.append([reading(3)])) == 1
    # Past identifiers_kept the oldest is forgotten: record 1 would be stored again.
    outbox.append([_identified(5), _identified(6)])
    assert [o.identifier for o in outbox.append([_identified(1)])] == [f"{1:032x}"]
    outbox.close()
