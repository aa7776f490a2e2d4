"""Patients and gateways as ingest's tests register them, and the observations they send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from telemon.observation import Observation
from telemon.payload import encode_observations
from telemon.topics import Channel, topic


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A patient with a gateway paired to them, as registered in the database."""

    patient_code: str
    patient_id: int
    gateway_code: str
    gateway_id: int

    def observations(
        self,
        count: int,
        *,
        first_seq: int = 0,
        start: datetime | None = None,
        metric: str = "spo2",
        value: float = 97.0,
        unit: str = "%",
        device: str = "AA:BB:CC:00:00:01",
    ) -> list[Observation]:
        start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        return [
            Observation(
                gateway_id=self.gateway_code,
                seq=first_seq + i,
                device_id=device,
                patient_id=self.patient_code,
                metric=metric,
                value=value,
                unit=unit,
                measured_at=start + timedelta(seconds=i),
            )
            for i in range(count)
        ]

    def obs_message(self, observations: list[Observation]) -> tuple[str, bytes]:
        return topic(self.gateway_code, Channel.OBS), encode_observations(
            self.gateway_code, observations, sent_at=datetime.now(UTC)
        )

    @property
    def obs_topic(self) -> str:
        return topic(self.gateway_code, Channel.OBS)

    @property
    def status_topic(self) -> str:
        return topic(self.gateway_code, Channel.STATUS)


def unique_code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def enroll_patient(
    db: psycopg.Connection, *, gateway_code: str | None = None, patient_code: str | None = None
) -> Enrolled:
    gp = db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES (%s, 'Dr Test', 'gp') "
        "ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name RETURNING id",
        ("dr.test",),
    ).fetchone()[0]
    patient_code = patient_code or unique_code("P")
    patient_id = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id) "
        "VALUES (%s, 'Maria', 'Bianchi', %s) RETURNING id",
        (patient_code, gp),
    ).fetchone()[0]
    gateway_code = gateway_code or unique_code("gw")
    gateway_id = db.execute(
        "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) RETURNING id",
        (gateway_code, patient_id),
    ).fetchone()[0]
    return Enrolled(patient_code, patient_id, gateway_code, gateway_id)
