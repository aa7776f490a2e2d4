"""What the gateway checks before a reading enters its outbox, now without pydantic: a reading
the server would refuse for its shape is rejected on the gateway, logged with its reason, and
its neighbours are stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from gateway.clock_check import TimePolicy
from gateway.devices.glucose_sync import SyncStore
from gateway.devices.recorder import Recorder
from gateway.devices.recovery import DECODE_ERRORS, Recoveries
from gateway.devices.rejected import REJECTED_FILE, RejectedLog
from gateway.devices.state import DeviceState
from gateway.gatt import Reading
from gateway.outbox import Outbox
from telemon.payload import PairedDevice

RECEIVED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_reading_with_a_control_character_in_its_context_is_rejected_alone(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", "gw-0001")
    rejected = RejectedLog(tmp_path / REJECTED_FILE)
    recoveries = Recoveries()
    recorder = Recorder(
        outbox,
        notify=lambda: None,
        rejected=rejected,
        sync=SyncStore(outbox),
        recoveries=recoveries,
        policy=TimePolicy(now=lambda: RECEIVED_AT),
    )
    state = DeviceState(
        PairedDevice(address="C0:FF:EE:00:00:01", kind="glucometer", patient_id="P1")
    )
    good = Reading("glucose", 5.4, "mmol/L", None, context={"meal": "preprandial"})
    # A NUL would make PostgreSQL refuse the server's whole batch (jsonb): the server refuses
    # the item, and so does the gateway, before it is stored.
    bad = Reading("glucose", 5.5, "mmol/L", None, context={"meal": "pre\x00prandial"})
    try:
        stored = asyncio.run(
            recorder.readings(
                state,
                [good, bad, good],
                RECEIVED_AT,
                characteristic="2a18",
                fresh=True,
                stored_kind=False,
            )
        )
        assert [o.value for o in stored] == [5.4, 5.4]
        assert [o.value for o in outbox.peek(10)] == [5.4, 5.4]
        [entry] = rejected.entries()
        assert "context" in entry["error"] and "glucose" in entry["error"]
        assert recoveries[DECODE_ERRORS] == 1 and state.decode_errors == 1
    finally:
        outbox.close()
