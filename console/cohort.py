"""The demo cohort: GPs, a service-centre nurse, and patients across care protocols and scenarios.

Deterministic, so a second run of the demo finds the same people and continues their history.
Every name is invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from telemon.database import one_row
from telemon.device_kinds import DeviceKind

# The demo service centre's duty phone: a number of its own, not any staff member's.
DEMO_SERVICE_CENTRE_PHONE = "+390212345678"

GIVEN = (
    "Maria",
    "Giuseppe",
    "Anna",
    "Luigi",
    "Francesca",
    "Marco",
    "Giovanna",
    "Antonio",
    "Rosa",
    "Paolo",
    "Lucia",
    "Carlo",
    "Elena",
    "Franco",
    "Teresa",
    "Sergio",
)
FAMILY = (
    "Rossi",
    "Bianchi",
    "Colombo",
    "Ferrari",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "Costa",
    "Mancini",
    "Lombardi",
    "Moretti",
    "Barbieri",
    "Fontana",
)

# (care protocol, simulation scenario, devices): a spread that shows every kind of alert.
CARE_PLANS = (
    (
        "covid19_home_oximetry",
        "covid_deterioration",
        (DeviceKind.PULSE_OXIMETER, DeviceKind.THERMOMETER),
    ),
    (
        "heart_failure",
        "heart_failure_decompensation",
        (DeviceKind.WEIGHT_SCALE, DeviceKind.BLOOD_PRESSURE, DeviceKind.PULSE_OXIMETER),
    ),
    ("hypertension", "hypertensive_crisis", (DeviceKind.BLOOD_PRESSURE,)),
    ("diabetes", "hypoglycaemia", (DeviceKind.GLUCOMETER,)),
    ("copd", "copd_exacerbation", (DeviceKind.PULSE_OXIMETER, DeviceKind.THERMOMETER)),
    ("covid19_home_oximetry", "stable", (DeviceKind.PULSE_OXIMETER, DeviceKind.THERMOMETER)),
    ("hypertension", "sensor_problems", (DeviceKind.BLOOD_PRESSURE,)),
    ("diabetes", "stable", (DeviceKind.GLUCOMETER,)),
    ("heart_failure", "out_of_range", (DeviceKind.WEIGHT_SCALE, DeviceKind.BLOOD_PRESSURE)),
    ("copd", "stable", (DeviceKind.PULSE_OXIMETER,)),
    ("hypertension", "low_battery", (DeviceKind.BLOOD_PRESSURE,)),
    ("covid19_home_oximetry", "sensor_problems", (DeviceKind.PULSE_OXIMETER,)),
)


@dataclass(frozen=True, slots=True)
class StaffMember:
    username: str
    display_name: str
    role: str
    phone: str


@dataclass(frozen=True, slots=True)
class DemoPatient:
    code: str
    given_name: str
    family_name: str
    gp_username: str
    protocol: str
    scenario: str
    gateway_code: str
    devices: tuple[tuple[str, DeviceKind], ...]  # (BLE address, device kind)
    # Invented, like the staff's: the demo's reminders (no Twilio) go to the outbox page.
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Cohort:
    staff: tuple[StaffMember, ...]
    patients: tuple[DemoPatient, ...]


def demo_cohort(patients: int = 12, gps: int = 3) -> Cohort:
    staff = [
        StaffMember(
            f"dr.{FAMILY[i].lower()}", f"Dr {GIVEN[-1 - i]} {FAMILY[i]}", "gp", f"+39333000{i:04d}"
        )
        for i in range(gps)
    ]
    staff.append(StaffMember("nurse.greco", "Inf. Elena Greco", "nurse", "+393330009000"))
    staff.append(StaffMember("admin", "Amministratore", "admin", "+393330009999"))
    staff.append(StaffMember("privacy", "Resp. protezione dati", "privacy", "+393330009998"))
    people = []
    for n in range(patients):
        protocol, scenario, kinds = CARE_PLANS[n % len(CARE_PLANS)]
        devices = tuple(
            (f"D0:{n // 256:02X}:{n % 256:02X}:00:00:{k:02X}", kind) for k, kind in enumerate(kinds)
        )
        people.append(
            DemoPatient(
                code=f"P{n + 1:04d}",
                given_name=GIVEN[(n * 7) % len(GIVEN)],
                family_name=FAMILY[(n * 5 + 3) % len(FAMILY)],
                gp_username=staff[n % gps].username,
                protocol=protocol,
                scenario=scenario,
                gateway_code=f"gw-{n + 1:04d}",
                devices=devices,
                phone=f"+39334000{n + 1:04d}",
            )
        )
    return Cohort(tuple(staff), tuple(people))


class DemoRefused(RuntimeError):
    """The demo would add its published logins to a database that is not the demo's own."""


def refuse_real_staff(conn: psycopg.Connection, cohort: Cohort) -> None:
    """Refuse a database whose staff are not all the demo's: a clinic's, most likely.

    The demo's logins share one published password (console.demo.DEMO_PASSWORD): seeded beside
    a clinic's staff, an "admin" anyone can sign in as would see every patient.
    """
    demo_staff = [member.username for member in cohort.staff]
    others = [
        row[0]
        for row in conn.execute(
            "SELECT username FROM staff WHERE username <> ALL(%s) ORDER BY username LIMIT 4",
            (demo_staff,),
        )
    ]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise DemoRefused(
            f"the database has staff who are not the demo's ({shown}): the demo would add "
            "logins with its published password beside them. Run it on a database of its own."
        )


def seed(
    conn: psycopg.Connection,
    cohort: Cohort,
    *,
    service_centre_phone: str,
    enrolled_at: datetime | None = None,
) -> None:
    """Insert the cohort; people and devices already present are left as they are."""
    with conn.transaction():
        centre = one_row(
            conn.execute(
                "INSERT INTO care_teams (name, kind, duty_phone) "
                "VALUES ('Centrale servizi', 'service_centre', %s) "
                "ON CONFLICT (name) DO UPDATE SET duty_phone = excluded.duty_phone RETURNING id",
                (service_centre_phone,),
            )
        )[0]
        staff_ids: dict[str, int] = {}
        for member in cohort.staff:
            staff_ids[member.username] = one_row(
                conn.execute(
                    "INSERT INTO staff (username, display_name, role, phone) "
                    "VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name "
                    "RETURNING id",
                    (member.username, member.display_name, member.role, member.phone),
                )
            )[0]
            if member.role == "nurse":
                conn.execute(
                    "INSERT INTO care_team_members VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (centre, staff_ids[member.username]),
                )
        for p in cohort.patients:
            patient_id = one_row(
                conn.execute(
                    "INSERT INTO patients (code, given_name, family_name, gp_id, care_team_id, "
                    "enrolled_at, phone) VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()), %s) "
                    "ON CONFLICT (code) DO UPDATE SET code = excluded.code RETURNING id",
                    (
                        p.code,
                        p.given_name,
                        p.family_name,
                        staff_ids[p.gp_username],
                        centre,
                        enrolled_at,
                        p.phone,
                    ),
                )
            )[0]
            conn.execute(
                "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
                "SELECT id, %s, enrolled_at FROM patients WHERE id = %s "
                "ON CONFLICT DO NOTHING",
                (p.protocol, patient_id),
            )
            gateway_id = one_row(
                conn.execute(
                    "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) "
                    "ON CONFLICT (code) DO UPDATE SET code = excluded.code RETURNING id",
                    (p.gateway_code, patient_id),
                )
            )[0]
            for address, kind in p.devices:
                conn.execute(
                    "INSERT INTO devices (gateway_id, address, kind) VALUES (%s, %s, %s) "
                    "ON CONFLICT (gateway_id, address) DO NOTHING",
                    (gateway_id, address, kind),
                )
