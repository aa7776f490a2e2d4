"""The demo's discharged patient: a monitoring that ended, with its closing report.

A patient of the same plans as the cohort's, enrolled four weeks before the demo's patients and
discharged, recovered, the day before they were enrolled: the readings of those weeks come from
the simulated homes' physiology model (``console.history``), then an admin's discharge is
recorded as the dashboard records it (``dashboard.enrolment.discharge``: protocols ended, the
closing report frozen), and the kit comes back (``dashboard.kit.return_gateway``). No simulated
home runs for the patient, and the alerts engine, evaluating only the enrolled, never looks at
them again: they receive no reminder. Done once: a second run finds the patient discharged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from console.cohort import Cohort, DemoPatient, seed
from console.history import FLEET_SEED, simulated_rows, store_rows
from dashboard.authz import Principal
from dashboard.enrolment import discharge
from dashboard.kit import return_gateway
from dashboard.web import LOCAL_TZ
from telemon.database import one_row
from telemon.device_kinds import DeviceKind

MONITORED = timedelta(days=28)
BEFORE = timedelta(days=1)  # discharged this long before the cohort's enrolment
REASON = "Guarigione: fine del monitoraggio domiciliare"
KIT_REASON = "Restituito alla dimissione"
SEED_OFFSET = 900  # its physiology seed, apart from the cohort's FLEET_SEED + n


def discharged_patient(cohort: Cohort) -> DemoPatient:
    """The one discharged patient: a COVID home-oximetry patient, stable, of the first GP."""
    gp = next(member.username for member in cohort.staff if member.role == "gp")
    return DemoPatient(
        code="P9001",
        given_name="Sergio",
        family_name="Barbieri",
        gp_username=gp,
        protocol="covid19_home_oximetry",
        scenario="stable",
        gateway_code="gw-9001",
        devices=(
            ("D0:FF:00:00:00:00", DeviceKind.PULSE_OXIMETER),
            ("D0:FF:00:00:00:01", DeviceKind.THERMOMETER),
        ),
        phone="+393340009001",
    )


def seed_discharged(
    conn: psycopg.Connection,
    cohort: Cohort,
    *,
    before: datetime,
    service_centre_phone: str,
    public_url: str,
) -> int:
    """Seed the discharged patient, monitored until ``BEFORE`` ahead of ``before`` (the cohort's
    enrolment); its id. One transaction; nothing when it is there already."""
    patient = discharged_patient(cohort)
    discharged_at = before - BEFORE
    enrolled_at = discharged_at - MONITORED
    with conn.transaction():
        found = conn.execute(
            "SELECT id FROM patients WHERE code = %s AND discharged_at IS NOT NULL",
            (patient.code,),
        ).fetchone()
        if found is not None:
            return int(found[0])
        seed(
            conn,
            Cohort(cohort.staff, (patient,)),
            service_centre_phone=service_centre_phone,
            enrolled_at=enrolled_at,
        )
        patient_id, gateway_id = one_row(
            conn.execute(
                "SELECT p.id, g.id FROM patients p JOIN gateways g ON g.patient_id = p.id "
                "WHERE p.code = %s",
                (patient.code,),
            )
        )
        rows = simulated_rows(
            patient,
            patient_id,
            gateway_id,
            start=enrolled_at,
            end=discharged_at,
            seed=FLEET_SEED + SEED_OFFSET,
        )
        store_rows(conn, rows, enrolled_at, discharged_at)
        admin = _admin(conn)
        discharge(
            conn,
            admin,
            patient_id,
            on=discharged_at.astimezone(LOCAL_TZ).date(),
            reason=REASON,
            now=discharged_at,
            public_url=public_url,
        )
        return_gateway(conn, admin, patient_id, gateway_id, KIT_REASON, discharged_at)
    return int(patient_id)


def _admin(conn: psycopg.Connection) -> Principal:
    """The demo's admin, who enrols and discharges, acting with no session (the seeding)."""
    staff_id, username, display_name, language, organisation_id = one_row(
        conn.execute(
            "SELECT id, username, display_name, language, organisation_id FROM staff "
            "WHERE role = 'admin' AND active ORDER BY id LIMIT 1"
        )
    )
    return Principal(
        staff_id,
        username,
        display_name,
        "admin",
        language,
        "",
        None,
        organisation_id=organisation_id,
    )
