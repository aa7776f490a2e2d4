"""Loading windows from the database with binary COPY, checked against plain queries."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg

from alerts.engine.load import MetricNeed, decode_rows, load_enrolments, load_windows
from alerts.windows import MetricWindow
from tests.alerts_engine.support import MORNING, PROTOCOLS, add_cohort, add_readings

H = timedelta(hours=1)


def test_windows_hold_each_patients_reliable_readings_in_order(
    db: psycopg.Connection,
) -> None:
    cohort = add_cohort(db, n_patients=4)
    a, b, c, d = cohort.patients
    add_readings(
        db, b, "spo2", [(MORNING - 2 * H, 95), (MORNING - 5 * H, 93, ["sensor_displaced"])]
    )
    add_readings(db, a, "spo2", [(MORNING - 30 * H, 90), (MORNING - H, 97, ["battery_low"])])
    add_readings(db, a, "pulse_rate", [(MORNING - H, 80)])
    add_readings(db, d, "spo2", [(MORNING + H, 80)])  # after "now": not yet
    # c measured long ago only, the newest of them unreliable: the latest reliable one counts.
    add_readings(
        db, c, "spo2", [(MORNING - 100 * H, 96), (MORNING - 90 * H, 20, ["invalid_measurement"])]
    )
    ids = np.array(sorted(cohort.patients), dtype=np.int64)
    needs = {"spo2": MetricNeed(24 * 3600, latest=True), "glucose": MetricNeed(3600)}
    now = int(MORNING.timestamp())

    for everyone in (False, True):
        windows = load_windows(db, ids, needs, MORNING, everyone=everyone)
        spo2 = windows["spo2"]
        # No rule reads an unreliable reading: they stay in the database. A battery warning
        # does not make a reading unreliable.
        assert spo2.offsets.tolist() == [0, 1, 2, 3, 3]
        assert spo2.t.tolist() == [now - 3600, now - 2 * 3600, now - 100 * 3600]
        assert spo2.v.tolist() == [97, 95, 96]
        assert spo2.reliable.all()
        assert windows["glucose"].t.size == 0 and windows["glucose"].n_patients == 4
        # a's 30-hour-old reading is beyond the window and a has a reliable one inside it.
        expected = MetricWindow.from_readings(
            [
                [(now - 3600, 97, True)],
                [(now - 7200, 95, True)],
                [(now - 100 * 3600, 96, True)],
                [],
            ]
        )
        assert np.array_equal(spo2.offsets, expected.offsets)


def test_decoding_matches_the_text_of_the_rows(db: psycopg.Connection) -> None:
    cohort = add_cohort(db)
    add_readings(db, cohort.patient, "glucose", [(MORNING - H * i, 100.5 + i) for i in range(50)])
    with (
        db.cursor() as cur,
        cur.copy(
            "COPY (SELECT patient_id, measured_at, value FROM observations "
            "ORDER BY measured_at) TO STDOUT (FORMAT BINARY)"
        ) as copy,
    ):
        rows = decode_rows(b"".join(bytes(block) for block in copy))
    plain = db.execute(
        "SELECT patient_id, extract(epoch FROM measured_at)::bigint, value FROM observations "
        "ORDER BY measured_at"
    ).fetchall()
    assert list(zip(rows.patient.tolist(), rows.t.tolist(), rows.v.tolist(), strict=True)) == plain


def test_enrolments_skip_ended_protocols_and_invalid_overrides(db: psycopg.Connection) -> None:
    cohort = add_cohort(db, n_patients=3)
    first, ended, odd = cohort.patients
    db.execute(
        "UPDATE patient_protocols SET ended_at = %s WHERE patient_id = %s", (MORNING - H, ended)
    )
    db.execute(
        "UPDATE patient_protocols SET overrides = %s WHERE patient_id = %s",
        ('{"rules": {"spo2_low": {"bands": [{"level": "red", "op": "<=", "value": 88}]}}}', first),
    )
    db.execute(
        "UPDATE patient_protocols SET overrides = %s WHERE patient_id = %s",
        ('{"rules": {"spo2_low": {"lookback": 5}}}', odd),
    )
    [enrolment] = load_enrolments(db, PROTOCOLS, MORNING).values()
    assert enrolment.patient_ids.tolist() == [first, odd]
    assert list(enrolment.overrides) == [0]  # odd's override is invalid: defaults apply


def test_enrolments_carry_when_each_one_started(db: psycopg.Connection) -> None:
    cohort = add_cohort(db, n_patients=2)
    early, late = cohort.patients
    db.execute(
        "UPDATE patient_protocols SET started_at = %s WHERE patient_id = %s", (MORNING - H, late)
    )
    [enrolment] = load_enrolments(db, PROTOCOLS, MORNING).values()
    assert enrolment.patient_ids.tolist() == [early, late]
    assert enrolment.started_at.tolist() == [
        int((MORNING - timedelta(days=30)).timestamp()),
        int((MORNING - H).timestamp()),
    ]
