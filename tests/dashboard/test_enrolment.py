"""Enrolment without JSON, its history, discharge, and the kit: what the admin gets from the
routes, on the dashboard tests' world (episodes opened by the real engine)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from alerts.protocol import PatientOverride, apply_override
from dashboard.bands import protocols
from tests.dashboard.conftest import World, add_readings, evaluate
from tests.dashboard.support import login

TODAY = date.today().isoformat()


def _form(world: World, csrf: str, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "csrf_token": csrf,
        "code": "P-0200",
        "given_name": "Rosa",
        "family_name": "Gallo",
        "phone": "+393331112222",
        "language": "it",
        "gp_id": str(world.staff["gp"]),
        "consent_date": TODAY,
        "protocol": ["copd"],
    }
    return form | changes


def test_refused_fields_are_named_next_to_them_and_values_kept(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "admin")
    refused = client.post(
        "/admin/patients",
        data=_form(
            world,
            csrf,
            phone="3331112222",  # no country code
            consent_date="",
            # SpO2 can be no more than 100; the red band below the amber one needs no reason
            # message of its own (it is wrong anyway), the amber one's changed value does.
            **{"band:copd:spo2_low:0": "120", "band:copd:spo2_low:1": "89"},
        ),
    )
    assert refused.status_code == 422
    page = refused.text
    assert 'id="err-phone"' in page and "+393331234567" in page
    assert 'id="err-consent_date"' in page
    assert 'id="err-band-copd-spo2_low-0"' in page and "50-100" in page
    assert 'id="err-why-copd-spo2_low"' in page
    assert 'value="Gallo"' in page and 'value="120"' in page  # the admin's values, kept
    assert db.execute("SELECT count(*) FROM patients WHERE code = 'P-0200'").fetchone()[0] == 0

    wrong_side = client.post(
        "/admin/patients",
        data=_form(
            world,
            csrf,
            **{
                "band:copd:spo2_low:0": "85",
                "band:copd:spo2_low:1": "86",  # red above amber on a low band
                "why:copd:spo2_low": "COPD baseline",
            },
        ),
    )
    assert wrong_side.status_code == 422
    assert 'id="err-band-copd-spo2_low-1"' in wrong_side.text and "(85)" in wrong_side.text


def test_enrol_edit_history_and_the_override_the_engine_reads(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "admin")
    created = client.post(
        "/admin/patients",
        data=_form(
            world,
            csrf,
            **{
                "band:copd:spo2_low:0": "86",
                "band:copd:spo2_low:1": "82",
                "why:copd:spo2_low": "COPD baseline 87-88 %",
                "every:copd:spo2_not_measuring": "12",
                "why:copd:spo2_not_measuring": "measures twice a day",
            },
        ),
    )
    assert created.status_code == 303, created.text
    patient = int(created.headers["location"].rsplit("/", 1)[1])
    row = db.execute(
        "SELECT p.language, p.consent_date, p.consent_recorded_by, pp.overrides FROM patients p "
        "JOIN patient_protocols pp ON pp.patient_id = p.id WHERE p.id = %s",
        (patient,),
    ).fetchone()
    assert row[:3] == ("it", date.today(), world.staff["admin"])
    # What the engine applies: the patient's bands and schedule, with the reason kept.
    applied = apply_override(protocols()["copd"], PatientOverride.model_validate(row[3]))
    assert [b.value for b in applied.rule("spo2_low").bands] == [86, 82]
    assert applied.rule("spo2_not_measuring").expected_every == 12 * 3600  # type: ignore[union-attr]
    assert row[3]["rules"]["spo2_low"]["reason"] == "COPD baseline 87-88 %"

    page = client.get(f"/admin/patients/{patient}")
    assert page.status_code == 200 and 'value="86' in page.text

    no_reason = client.post(
        f"/admin/patients/{patient}", data=_form(world, csrf, phone="+393339998888")
    )
    assert no_reason.status_code == 422 and 'id="err-change_reason"' in no_reason.text
    edited = client.post(
        f"/admin/patients/{patient}",
        data=_form(
            world,
            csrf,
            phone="+393339998888",
            protocol=["copd", "heart_failure"],
            change_reason="new phone; heart failure diagnosed",
            **{
                "band:copd:spo2_low:0": "86",
                "band:copd:spo2_low:1": "82",
                "why:copd:spo2_low": "COPD baseline 87-88 %",
                "every:copd:spo2_not_measuring": "12",
                "why:copd:spo2_not_measuring": "measures twice a day",
            },
        ),
    )
    assert edited.status_code == 303, edited.text
    history = db.execute(
        "SELECT action, actor_id, changes, reason FROM enrolment_history "
        "WHERE patient_id = %s ORDER BY id",
        (patient,),
    ).fetchall()
    assert [h[0] for h in history] == ["enrol", "edit"]
    _, actor, changes, reason = history[1]
    assert actor == world.staff["admin"] and reason == "new phone; heart failure diagnosed"
    assert changes["phone"] == ["+393331112222", "+393339998888"]
    assert sorted(changes["protocols"][1]) == ["copd", "heart_failure"]
    audited = [
        r[0]
        for r in db.execute(
            "SELECT action FROM audit_log WHERE patient_id = %s ORDER BY id", (patient,)
        )
    ]
    assert audited[:1] == ["patient.enrol"] and "patient.update" in audited
    assert "new phone" in client.get(f"/admin/patients/{patient}").text


def test_discharge_stops_evaluation_and_resolves_the_engines_episode(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    patient, episode = world.patients["own"], world.episodes["own"]
    csrf = login(client, "admin")
    refused = client.post(
        f"/admin/patients/{patient}/discharge",
        data={"csrf_token": csrf, "discharge_date": TODAY, "discharge_reason": ""},
    )
    assert refused.status_code == 422 and 'id="err-discharge_reason"' in refused.text
    done = client.post(
        f"/admin/patients/{patient}/discharge",
        data={"csrf_token": csrf, "discharge_date": TODAY, "discharge_reason": "recovered"},
    )
    assert done.status_code == 303
    state, note = db.execute(
        "SELECT state, resolution_note FROM episodes WHERE id = %s", (episode,)
    ).fetchone()
    assert state == "resolved" and "recovered" in note
    assert (
        db.execute(
            "SELECT count(*) FROM alerts WHERE patient_id = %s AND state <> 'resolved'",
            (patient,),
        ).fetchone()[0]
        == 0
    )
    # A red reading after discharge: the real engine opens nothing.
    now = datetime.now(UTC) + timedelta(minutes=5)
    add_readings(db, patient, [("spo2", 3, 80), ("spo2", 1, 80)], now)
    evaluate(db, now, [patient])
    assert (
        db.execute(
            "SELECT count(*) FROM episodes WHERE patient_id = %s AND state <> 'resolved'",
            (patient,),
        ).fetchone()[0]
        == 0
    )
    assert db.execute(
        "SELECT action, reason FROM enrolment_history WHERE patient_id = %s", (patient,)
    ).fetchall() == [("discharge", "recovered")]


def test_swap_keeps_the_patients_readings_and_the_card_lists_the_kit(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    patient = world.patients["own"]
    csrf = login(client, "admin")
    gateway, old = db.execute(
        "SELECT g.id, d.id FROM gateways g JOIN devices d ON d.gateway_id = g.id "
        "WHERE g.patient_id = %s",
        (patient,),
    ).fetchone()
    db.execute("UPDATE observations SET device_id = %s WHERE patient_id = %s", (old, patient))
    readings = db.execute(
        "SELECT count(*) FROM observations WHERE patient_id = %s", (patient,)
    ).fetchone()[0]
    bad = client.post(
        f"/admin/patients/{patient}/kit",
        data={
            "csrf_token": csrf,
            "action": "swap",
            "target": old,
            "kind": "pulse_oximeter",
            "address": "not-an-address",
            "reason": "",
        },
    )
    assert bad.status_code == 422 and f'id="err-kit-swap-{old}-address"' in bad.text
    swapped = client.post(
        f"/admin/patients/{patient}/kit",
        data={
            "csrf_token": csrf,
            "action": "swap",
            "target": str(old),
            "kind": "pulse_oximeter",
            "address": "aa:bb:cc:dd:ee:02",
            "manufacturer": "Nonin",
            "model": "3245",
            "serial_number": "SN-NEW-1",
            "udi": "(01)00812345678901(21)SN-NEW-1",
            "reason": "cracked display",
        },
    )
    assert swapped.status_code == 303, swapped.text
    new = db.execute(
        "SELECT id FROM devices WHERE gateway_id = %s AND address = 'AA:BB:CC:DD:EE:02'",
        (gateway,),
    ).fetchone()[0]
    assert db.execute(
        "SELECT unpaired_at IS NOT NULL, replaced_by, return_reason FROM devices WHERE id = %s",
        (old,),
    ).fetchone() == (True, new, "cracked display")
    # Every reading the replaced device took is still the patient's.
    assert (
        db.execute(
            "SELECT count(*) FROM observations WHERE patient_id = %s AND device_id = %s",
            (patient, old),
        ).fetchone()[0]
        == readings
    )
    card = client.get(f"/admin/patients/{patient}/card")
    assert card.status_code == 200
    assert "SN-NEW-1" in card.text and "(01)00812345678901" in card.text and "GW-A" in card.text
    assert "+39" in card.text  # the service centre's duty phone
    assert "AA:01" not in card.text  # the swapped device is no longer on the card
    actions = [
        r[0]
        for r in db.execute(
            "SELECT action FROM audit_log WHERE patient_id = %s ORDER BY id", (patient,)
        )
    ]
    assert "kit.swap" in actions and "device_card.read" in actions
    assert db.execute(
        "SELECT action, reason FROM enrolment_history WHERE patient_id = %s", (patient,)
    ).fetchall() == [("kit.swap", "cracked display")]


def test_clinicians_cannot_reach_enrolment(client: TestClient, world: World) -> None:
    login(client, "dr.rossi")
    assert client.get(f"/admin/patients/{world.patients['own']}").status_code == 403
    assert client.get("/admin/patients/new").status_code == 403


def test_return_and_repair_a_device_and_return_the_whole_kit(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    patient = world.patients["own"]
    csrf = login(client, "admin")
    gateway, device = db.execute(
        "SELECT g.id, d.id FROM gateways g JOIN devices d ON d.gateway_id = g.id "
        "WHERE g.patient_id = %s",
        (patient,),
    ).fetchone()
    url = f"/admin/patients/{patient}/kit"
    # Another patient's gateway cannot join this kit.
    db.execute(
        "INSERT INTO gateways (code, patient_id) VALUES ('GW-B', %s)", (world.patients["far"],)
    )
    taken = client.post(url, data={"csrf_token": csrf, "action": "gateway", "code": "GW-B"})
    assert taken.status_code == 422 and "GW-B" in taken.text
    no_reason = client.post(url, data={"csrf_token": csrf, "action": "return", "target": device})
    assert no_reason.status_code == 422 and f'id="err-kit-return-{device}-reason"' in no_reason.text
    returned = client.post(
        url, data={"csrf_token": csrf, "action": "return", "target": device, "reason": "broken"}
    )
    assert returned.status_code == 303
    assert "AA:01" not in client.get(f"{url[:-4]}/card").text
    # A device returned and paired again on the same gateway is its own row again, so its
    # readings stay under one device.
    pulse = {
        "csrf_token": csrf,
        "action": "device",
        "target": gateway,
        "kind": "pulse_oximeter",
        "address": "aa-bb-cc-dd-ee-09",
        "serial_number": "SN-9",
    }
    assert client.post(url, data=pulse).status_code == 303
    (first,) = db.execute("SELECT id FROM devices WHERE address = 'AA:BB:CC:DD:EE:09'").fetchone()
    client.post(
        url, data={"csrf_token": csrf, "action": "return", "target": first, "reason": "travel"}
    )
    assert client.post(url, data=pulse).status_code == 303
    assert db.execute(
        "SELECT id, unpaired_at FROM devices WHERE address = 'AA:BB:CC:DD:EE:09'"
    ).fetchall() == [(first, None)]
    whole = client.post(
        url,
        data={
            "csrf_token": csrf,
            "action": "return_gateway",
            "target": gateway,
            "reason": "end of monitoring",
        },
    )
    assert whole.status_code == 303
    assert db.execute("SELECT patient_id FROM gateways WHERE id = %s", (gateway,)).fetchone() == (
        None,
    )
    assert (
        db.execute(
            "SELECT count(*) FROM devices WHERE gateway_id = %s AND unpaired_at IS NULL", (gateway,)
        ).fetchone()[0]
        == 0
    )
    assert [
        r[0]
        for r in db.execute(
            "SELECT action FROM enrolment_history WHERE patient_id = %s ORDER BY id", (patient,)
        )
    ] == ["kit.return", "kit.assign", "kit.return", "kit.assign", "kit.return"]
