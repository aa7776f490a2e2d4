"""A record sent again under another sequence number is stored once, by its identifier (issue 19).

A device that cannot delete its memory sends it all again; a reinstalled gateway numbers from 1
again, so (gateway, seq) no longer recognises what it stored before. The identifier does, even
when the re-upload's clock correction gives the record another measured_at.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ingest.inbound import classify
from telemon.identifier import observation_identifier
from tests.database import scalar


def _identified(patient, count, *, first_seq=0, shift=timedelta(0), value=120.0, start=None):
    """``count`` blood pressure readings whose identifiers come from their (unshifted) device
    time; ``shift`` moves measured_at as a different clock correction would."""
    readings = patient.observations(
        count, first_seq=first_seq, metric="systolic", unit="mm[Hg]", start=start
    )
    return [
        replace(
            o,
            value=value,
            measured_at=o.measured_at + shift,
            identifier=observation_identifier(
                device_id=o.device_id,
                patient_id=o.patient_id,
                device_time=o.measured_at.replace(tzinfo=None).isoformat(),
                type_code=o.metric,
                value=value,
            ),
        )
        for o in readings
    ]


def test_a_reinstalled_gateway_uploading_its_history_again_stores_nothing_twice(db, store, patient):
    first = store.write([classify(*patient.obs_message(_identified(patient, 20, first_seq=1)))])
    assert (first.stored, first.duplicates) == (20, 0)

    # Reinstalled: sequence numbers from 1 again, the same 20 records with a clock offset
    # measured a few seconds differently, and 5 new ones.
    again = _identified(patient, 25, first_seq=1, shift=timedelta(seconds=7))
    result = store.write([classify(*patient.obs_message(again))])

    assert (result.stored, result.duplicates, result.rejected_total) == (5, 20, 0)
    assert scalar(db, "SELECT count(*) FROM observations") == 25
    assert scalar(db, "SELECT count(DISTINCT identifier) FROM observations") == 25
    assert scalar(db, "SELECT count(*) FROM observation_identifiers") == 25
    # The 20 old ones kept their first measured_at; the new ones are the re-upload's.
    assert (
        scalar(
            db,
            "SELECT count(*) FROM observations o JOIN observation_identifiers i USING "
            "(patient_id, identifier) WHERE i.measured_at = o.measured_at",
        )
        == 25
    )


def test_the_same_record_twice_in_one_batch_is_stored_once(db, store, patient):
    readings = _identified(patient, 3)
    resent = [replace(r, seq=r.seq + 100) for r in readings]
    result = store.write(
        [
            classify(*patient.obs_message(readings)),
            classify(*patient.obs_message(resent)),
        ]
    )
    assert (result.stored, result.duplicates) == (3, 3)
    assert scalar(db, "SELECT array_agg(seq ORDER BY seq) FROM observations") == [0, 1, 2]


def test_readings_without_identifier_beside_a_duplicate_are_all_kept(db, store, patient):
    store.write([classify(*patient.obs_message(_identified(patient, 2)))])
    live = patient.observations(4, first_seq=50)  # no device stamp: no identifier
    mixed = [*_identified(patient, 2, first_seq=10), *live]
    result = store.write([classify(*patient.obs_message(mixed))])
    assert (result.stored, result.duplicates) == (4, 2)
    assert scalar(db, "SELECT count(*) FROM observations WHERE identifier IS NULL") == 4


def test_same_identifier_of_another_patient_is_another_record(db, store, enroll):
    one, two = enroll(), enroll()
    shared = _identified(one, 1)[0].identifier
    for patient in (one, two):
        reading = replace(_identified(patient, 1)[0], identifier=shared)
        assert store.write([classify(*patient.obs_message([reading]))]).stored == 1
    assert scalar(db, "SELECT count(*) FROM observations") == 2


def test_retention_forgets_identifiers_with_their_readings(db, store, patient):
    store.write([classify(*patient.obs_message(_identified(patient, 3)))])
    later = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    store.write(
        [classify(*patient.obs_message(_identified(patient, 2, first_seq=10, start=later)))]
    )
    retention = scalar(db, "SELECT retention FROM storage_settings")
    db.execute(
        "UPDATE observation_identifiers SET measured_at = now() - %s - interval '1 day' "
        "WHERE identifier IN (SELECT identifier FROM observations WHERE seq < 3)",
        (retention,),
    )
    db.execute("SELECT telemon_apply_observation_retention()")
    assert scalar(db, "SELECT count(*) FROM observation_identifiers") == 2
