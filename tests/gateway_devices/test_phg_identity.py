"""The gateway's PHG identity and its devices' (issue 19), end to end: the real runtime on
bumble reads each simulated device's Device Information (System ID, serial, firmware, model,
maker), derives its own EUI-64 from its radio's address and keeps it, and reports both in its
status; the real ingest stores them, beside the kit's own serial."""

from __future__ import annotations

import asyncio
import re

import psycopg

from gateway.identity import GatewayIdentity
from ingest.service import IngestService
from telemon.config import Settings
from telemon.system_id import SYSTEM_ID_PATTERN, from_eui48
from tests.ingest.support import enroll_patient, unique_code
from tests.waiting import wait_until

QUERY = (
    "SELECT address, system_id, manufacturer, model, serial_number, reported_serial_number, "
    "firmware FROM devices WHERE gateway_id = %s ORDER BY kind"
)


def _devices(db: psycopg.Connection, gateway_id: int) -> list[tuple]:
    return db.execute(QUERY, (gateway_id,)).fetchall()


async def test_system_ids_and_device_information_reach_the_store(
    gateway, make, db, database_url, mqtt_url
) -> None:
    oximeter = await make("pulse_oximeter")
    thermometer = await make("thermometer")  # exposes no System ID, like many BLE devices
    gateway.pair(oximeter, thermometer)
    home = enroll_patient(db, gateway_code=gateway.id)
    # The kit's oximeter, as an admin entered it from the box: a serial that is not this unit's.
    db.execute(
        "INSERT INTO devices (gateway_id, address, kind, manufacturer, serial_number) "
        "VALUES (%s, %s, 'pulse_oximeter', 'Medisim', 'PO60-BOX-LABEL')",
        (home.gateway_id, oximeter.address),
    )
    settings = Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        ingest_batch_size=500,
        ingest_batch_ms=50,
        ingest_shared_group=unique_code("ingest"),
        ingest_metrics_port=0,
    )
    ingest = IngestService(settings, client_id=unique_code("ingest"), metrics_host="127.0.0.1")
    ingest.start()
    try:
        async with gateway.running(status_interval=0.3) as runtime:
            adapter = await runtime.adapter.address()
            await asyncio.to_thread(
                wait_until,
                # Both devices registered, each with the firmware it reported.
                lambda: [r[6] is not None for r in _devices(db, home.gateway_id)] == [True, True],
                timeout=30,
            )
            await asyncio.to_thread(
                wait_until,
                lambda: (
                    db.execute(
                        "SELECT system_id FROM gateways WHERE id = %s", (home.gateway_id,)
                    ).fetchone()[0]
                    is not None
                ),
                timeout=10,
            )
            status = runtime.uplink.status()
    finally:
        ingest.stop(timeout=5)

    # The gateway: its EUI-64 from the radio's address, saved, and reported.
    assert adapter is not None
    expected = from_eui48(adapter)
    assert status.system_id == expected
    assert GatewayIdentity.load(gateway.state_dir).system_id == expected
    stored = db.execute(
        "SELECT system_id FROM gateways WHERE id = %s", (home.gateway_id,)
    ).fetchone()[0]
    assert stored == expected

    # The devices: what Device Information said; the kit's serial kept, the unit's beside it.
    ox = oximeter.identity
    th = thermometer.identity
    assert _devices(db, home.gateway_id) == [
        (
            oximeter.address,
            ox.system_id(oximeter.address),
            "Medisim",
            ox.model,
            "PO60-BOX-LABEL",
            ox.serial_number(oximeter.address),
            ox.firmware_revision,
        ),
        (
            thermometer.address,
            None,
            "Medisim",
            th.model,
            th.serial_number(thermometer.address),
            th.serial_number(thermometer.address),
            th.firmware_revision,
        ),
    ]
    assert re.match(SYSTEM_ID_PATTERN, ox.system_id(oximeter.address) or "")

    # Stable: a restart reads the stored id, not the adapter.
    async with gateway.running() as again:
        assert again.identity.system_id == expected
        assert await again.ensure_system_id() == expected
