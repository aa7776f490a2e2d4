"""A gateway reinstalled from scratch uploads a meter's memory again: stored once (issue 19).

The real gateway runtime reads a real bumble glucometer (one that, like many, cannot delete its
records), publishes to the real broker, and a real IngestService stores into PostgreSQL. The
gateway is then reinstalled: same identity, empty state directory, so its outbox numbers from 1
again and it has no sync position, and the meter sends everything it holds. The meter's memory
has wrapped in between, so the new sequence numbers fall on other records than before: only the
readings' identifiers can tell which are stored already.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from firmware_sim.devices.glucose_records import GlucoseRecordStore
from ingest.service import IngestService
from telemon.config import Settings
from tests.database import scalar
from tests.ingest.conftest import forget_session
from tests.ingest.support import enroll_patient, unique_code
from tests.waiting import wait_until

from .conftest import PATIENT, Gateway, measurement

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


@pytest.fixture
def ingest(database_url, mqtt_url, db):
    service = IngestService(
        Settings(
            database_url=database_url,
            mqtt_url=mqtt_url,
            ingest_batch_size=100,
            ingest_batch_ms=50,
            ingest_shared_group=unique_code("ingest"),
            ingest_metrics_port=0,
        ),
        client_id=unique_code("ingest"),
        metrics_host="127.0.0.1",
    )
    service.start()
    yield service
    service.stop(timeout=5)
    forget_session(mqtt_url, service.client_id)


async def _record(meter, n: int) -> None:
    for _ in range(n):
        number = meter.store._next
        await meter.record(
            measurement(
                "glucometer",
                {"glucose": 100 + number},
                at=START + timedelta(minutes=10 * number),
                session="before_lunch",
            )
        )


def _stored(db) -> list[tuple[int, int, float]]:
    return [
        tuple(row)
        for row in db.execute(
            "SELECT (context->>'sequence_number')::int, seq, round(value::numeric, 1)::float "
            "FROM observations "
            "WHERE metric_id = (SELECT id FROM metrics WHERE key = 'glucose') ORDER BY 1, 2"
        )
    ]


async def _run_until(gateway: Gateway, db, count: int) -> None:
    async with gateway.running():
        await asyncio.to_thread(wait_until, lambda: len(_stored(db)) >= count, 30)
        await asyncio.sleep(1.0)  # anything more would be a duplicate: give it time to arrive


async def test_a_reinstalled_gateway_does_not_store_the_meters_memory_twice(
    db, ingest, make, link, mqtt_url, tmp_path
) -> None:
    meter = await make("glucometer")
    meter.store = GlucoseRecordStore(capacity=3)  # a small memory, so that it wraps
    first = Gateway(tmp_path / "first", link, mqtt_url)
    enroll_patient(db, gateway_code=first.id, patient_code=PATIENT)
    first.pair(meter)
    await _record(meter, 4)  # records 0-3; the memory holds 1, 2, 3
    await _run_until(first, db, 3)
    assert _stored(db) == [(1, 1, 101.0), (2, 2, 102.0), (3, 3, 103.0)]

    # Reinstalled: the same identity on an empty state directory.
    again = Gateway(tmp_path / "again", link, mqtt_url)
    again.identity = first.identity
    again.identity.save(again.state_dir)
    again.pair(meter)
    await _record(meter, 1)  # record 4; the memory holds 2, 3, 4
    await _run_until(again, db, 4)

    # Record 2 came again as seq 1, record 3 as seq 2: stored once each, under their first seq.
    assert _stored(db) == [(1, 1, 101.0), (2, 2, 102.0), (3, 3, 103.0), (4, 3, 104.0)]
    assert ingest.duplicates_ignored == 2
    assert scalar(db, "SELECT count(*) FROM observation_identifiers") == 4
    # Other tests' retained status messages on this broker are dead letters of their own.
    ours = "SELECT count(*) FROM dead_letters WHERE gateway_code = %s"
    assert scalar(db, ours, first.id) == 0
