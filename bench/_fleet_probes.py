"""The probes of bench/alert_latency.py: patients whose next reading must end in two SMS.

Each probe patient follows the COVID-19 home oximetry protocol and has a GP of their own, so
that every SMS names its probe by recipient and body. A probe reading is SpO2 88 % with a pulse
of 84/min from their oximeter: in the protocol's red band (<= 92 %) and, with two parameters
only, short of the three a partial NEWS2 needs, so spo2_low is the one rule it opens.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import psycopg

from bench._fleet_setup import ROOT
from bench._fleet_streams import OXIMETER, SPOT_DELAY, Message, message, reading_items
from console.cohort import FAMILY, GIVEN, Cohort, DemoPatient, StaffMember

# The tests' fake, imported from where it lives: its behaviour is the tests'; this adds a clock.
sys.path.append(str(ROOT / "tests" / "fakes"))
from twilio_server import FakeTwilio, RecordedRequest

PROTOCOL = "covid19_home_oximetry"
RULE = "spo2_low"
PROBE_VALUES = (("spo2", 88.0), ("pulse_rate", 84.0))
SENDER_NUMBER = "+15005550006"  # Twilio's test 'From' number


@dataclass
class TimedFakeTwilio(FakeTwilio):
    """The tests' fake Twilio, also noting when each request arrived."""

    arrivals: list[tuple[float, RecordedRequest]] = field(default_factory=list)

    def _record(self, request: RecordedRequest) -> None:
        self.arrivals.append((time.time(), request))
        super()._record(request)

    def sms_arrivals(self) -> dict[tuple[str, str], float]:
        """When each message request arrived, by (To, Body)."""
        return {
            (r.form.get("To", ""), r.form.get("Body", "")): at
            for at, r in list(self.arrivals)
            if r.method == "POST"
        }

    def environment(self, service_centre_phone: str) -> dict[str, str]:
        """Settings that point the real twilio client of the alerts engine at this fake."""
        return {
            "TELEMON_TWILIO_ACCOUNT_SID": self.account_sid,
            "TELEMON_TWILIO_AUTH_TOKEN": self.auth_token,
            "TELEMON_TWILIO_FROM": SENDER_NUMBER,
            "TELEMON_TWILIO_BASE_URL": self.base_url,
            "TELEMON_SERVICE_CENTRE_PHONE": service_centre_phone,
        }


def probe_cohort(count: int, run: str) -> Cohort:
    staff = tuple(
        StaffMember(f"dr.probe.{run}.{i:03d}", f"Dr Probe {i}", "gp", f"+39334{i:07d}")
        for i in range(count)
    )
    patients = tuple(
        DemoPatient(
            code=f"Q-{run}-{i:03d}",
            given_name=GIVEN[i % len(GIVEN)],
            family_name=FAMILY[(i * 5 + 1) % len(FAMILY)],
            gp_username=staff[i].username,
            protocol=PROTOCOL,
            scenario="probe",
            gateway_code=f"gq-{run}-{i:03d}",
            devices=((f"D1:{i // 256:02X}:{i % 256:02X}:00:00:00", OXIMETER),),
        )
        for i in range(count)
    )
    return Cohort(staff, patients)


def probe_message(patient: DemoPatient, first_seq: int, sent_at: float) -> Message:
    """A spot check measured just now: it reached the gateway at ``sent_at``."""
    at = sent_at - SPOT_DELAY
    address = patient.devices[0][0]
    values = [(address, OXIMETER, metric, value) for metric, value in PROBE_VALUES]
    items = reading_items(patient.code, first_seq, at, values, continuous=False)
    return message(patient.gateway_code, items)


def counted(conn: psycopg.Connection, patient_ids: list[int]) -> int:
    """Probe patients with one in-band reading counted towards the confirmation."""
    return conn.execute(
        "SELECT count(*) FROM alert_rule_state "
        "WHERE protocol = %s AND rule = %s AND count >= 1 AND patient_id = ANY(%s)",
        (PROTOCOL, RULE, patient_ids),
    ).fetchone()[0]


@dataclass(frozen=True, slots=True)
class Notified:
    patient_code: str
    recipient_kind: str
    to: str
    body: str
    stored_at: float | None  # the probe reading's transaction, POSIX
    created_at: float  # the notification row's transaction (alerts.opened_at is whole seconds)


def notifications(conn: psycopg.Connection, codes: list[str], probe_seq: int) -> list[Notified]:
    rows = conn.execute(
        """
        SELECT p.code, n.recipient_kind, n.to_address, n.body,
               extract(epoch FROM o.stored_at), extract(epoch FROM n.created_at)
        FROM notifications n
        JOIN alerts a ON a.id = n.alert_id
        JOIN patients p ON p.id = a.patient_id
        LEFT JOIN observations o ON o.patient_id = p.id AND o.seq = %s
        WHERE p.code = ANY(%s)
        ORDER BY p.code, n.recipient_kind
        """,
        (probe_seq, codes),
    ).fetchall()
    return [
        Notified(code, kind, to, body, _float(stored), float(created))
        for code, kind, to, body, stored, created in rows
    ]


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
