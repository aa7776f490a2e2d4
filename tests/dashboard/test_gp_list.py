"""The GP's list at a glance and the patient page's plan, on episodes the real engine opened:
whose patients a GP sees, in which order, filtered how; own tags; adherence figures counted on
known readings; trend arrows; the monitoring plan in words; 90 days drawn from the rollup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from dashboard.glance import trend_of
from tests.dashboard.conftest import World, refresh_rollup
from tests.dashboard.gp_cohort import GpList, seed_gp_list, store
from tests.dashboard.support import login


@pytest.fixture
def gp_list(world: World, db: psycopg.Connection) -> GpList:
    return seed_gp_list(world, db)


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr [^>]*data-patient-id="(\d+)"', html)]


def _row(html: str, patient: int) -> str:
    return re.search(rf'<tr [^>]*data-patient-id="{patient}".*?</tr>', html, re.S).group(0)


def test_gp_sees_own_patients_sorted_by_need(client: TestClient, gp_list: GpList) -> None:
    w = gp_list.world
    login(client, "dr.rossi")
    page = client.get("/patients")
    assert page.status_code == 200
    order = _rows(page.text)
    # Red episode, then amber, then not measuring, then the rest (by name).
    assert order[:3] == [w.patients["own"], gp_list.amber, gp_list.silent]
    assert set(order[3:]) == {gp_list.quiet, gp_list.hbp, gp_list.dm}
    assert w.patients["other_gp"] not in order and w.patients["far"] not in order
    silent = _row(page.text, gp_list.silent)
    assert "Not measuring" in silent and "data-last-reading>2 d<" in silent
    # The API twin gives the same list with the same figures.
    api = client.get("/api/patients").json()
    assert [p["id"] for p in api] == order
    assert next(p for p in api if p["id"] == gp_list.silent)["not_measuring"] is True


def test_latest_values_carry_their_time_and_a_trend_with_words(
    client: TestClient, gp_list: GpList
) -> None:
    login(client, "dr.rossi")
    own = _row(client.get("/patients").text, gp_list.world.patients["own"])
    spo2 = re.search(r'data-metric="spo2".*?</span></span>', own, re.S).group(0)
    assert "<b>88</b>" in spo2
    assert "↓" in spo2 and "falling against the week before" in spo2  # 88 after a week of ~97
    quiet = _row(client.get("/patients").text, gp_list.quiet)
    assert "→" in quiet and "steady against the week before" in quiet


def test_adherence_counts_days_with_readings_against_the_schedule(
    client: TestClient, gp_list: GpList
) -> None:
    login(client, "dr.rossi")
    api = {p["id"]: p for p in client.get("/api/patients").json()}
    # Weekly home BP series: 1 week asked for in 7 days, 4 in 30 (counted back from today: the
    # 30 days' first two are not a whole week); readings on days 1-3, 10 and 20 ago: the weeks
    # of days 0-6, 7-13 and 14-20 ago have one, the week of days 21-27 ago none.
    (hbp,) = api[gp_list.hbp]["adherence"]
    assert (hbp["metric"], hbp["every_hours"]) == ("systolic", 168)
    assert (hbp["days_7"], hbp["expected_7"], hbp["days_30"], hbp["expected_30"]) == (1, 1, 3, 4)
    # Daily glucose since 4 days ago (5 days asked for): days 1, 2 (twice) and 4 ago.
    (dm,) = api[gp_list.dm]["adherence"]
    assert (dm["days_7"], dm["expected_7"], dm["days_30"], dm["expected_30"]) == (3, 5, 3, 5)
    page = client.get("/patients").text
    cell = re.search(r'data-adherence="diabetes".*?</div>', _row(page, gp_list.dm), re.S).group(0)
    assert "<b>3/5</b>" in cell
    cell = re.search(r'data-adherence="hypertension".*?</div>', _row(page, gp_list.hbp), re.S)
    assert "<b>1/1</b>" in cell.group(0) and "<b>3/4</b>" in cell.group(0)


@pytest.mark.parametrize(
    ("language", "words"), [("en", "not yet due"), ("it", "non ancora prevista")]
)
def test_a_weekly_series_begun_6_days_ago_is_not_yet_due(
    client: TestClient, gp_list: GpList, db: psycopg.Connection, language: str, words: str
) -> None:
    """Readings on 3 of the 6 days since the protocol started: no week has ended, so the list
    and the report say the schedule asks for nothing yet, never "3/0"."""
    started = datetime.now(UTC) - timedelta(days=5, hours=12)
    db.execute(
        "UPDATE patient_protocols SET started_at = %s WHERE patient_id = %s",
        (started, gp_list.hbp),
    )
    db.execute("UPDATE staff SET language = %s WHERE username = 'dr.rossi'", (language,))
    login(client, "dr.rossi")
    (hbp,) = {p["id"]: p for p in client.get("/api/patients").json()}[gp_list.hbp]["adherence"]
    assert (hbp["days_7"], hbp["expected_7"], hbp["days_30"], hbp["expected_30"]) == (0, 0, 0, 0)
    row = _row(client.get("/patients").text, gp_list.hbp)
    cell = re.search(r'data-adherence="hypertension".*?</div>', row, re.S).group(0)
    assert cell.count(words) == 2 and "/0" not in cell
    report = client.get(f"/patients/{gp_list.hbp}/report").text
    adherence = {"en": "Adherence", "it": "Aderenza"}[language]
    assert f"{adherence}: {words}" in report


def test_filters_by_need_protocol_and_tag(
    client: TestClient, gp_list: GpList, db: psycopg.Connection
) -> None:
    w = gp_list.world
    csrf = login(client, "dr.rossi")
    assert _rows(client.get("/patients?need=attention").text) == [w.patients["own"], gp_list.amber]
    assert _rows(client.get("/patients?need=not_measuring").text) == [gp_list.silent]
    assert _rows(client.get("/patients?protocol=hypertension").text) == [gp_list.hbp]
    api = client.get("/api/patients", params={"need": "not_measuring"}).json()
    assert [p["id"] for p in api] == [gp_list.silent]
    for patient in (gp_list.quiet, gp_list.dm):
        response = client.post(
            f"/patients/{patient}/tags",
            data={"tag": "  Home  Visit ", "csrf_token": csrf, "next": "/patients"},
        )
        assert response.status_code == 303
    assert sorted(_rows(client.get("/patients?tag=home visit").text)) == sorted(
        [gp_list.quiet, gp_list.dm]
    )
    fragment = client.get("/patients/fragment?tag=home+visit&protocol=diabetes")
    assert _rows(fragment.text) == [gp_list.dm]
    assert client.get("/patients?need=everything").status_code == 422
    rows = db.execute(
        "SELECT action, patient_id, details->>'tag' FROM audit_log "
        "WHERE action LIKE 'patient.tag.%%' ORDER BY id"
    ).fetchall()
    assert rows == [
        ("patient.tag.add", gp_list.quiet, "home visit"),
        ("patient.tag.add", gp_list.dm, "home visit"),
    ]


def test_tags_are_the_gps_own(client: TestClient, gp_list: GpList, db: psycopg.Connection) -> None:
    w = gp_list.world
    csrf = login(client, "dr.rossi")
    own = w.patients["own"]
    assert (
        client.post(
            f"/patients/{own}/tags", data={"tag": "diuretics", "csrf_token": csrf}
        ).status_code
        == 303
    )
    page = client.get(f"/patients/{own}")
    assert re.search(r'id="patient-tags".*?diuretics', page.text, re.S)
    # Another GP's patient is not found; a tag too long is refused.
    other = w.patients["other_gp"]
    assert (
        client.post(f"/patients/{other}/tags", data={"tag": "x", "csrf_token": csrf}).status_code
        == 404
    )
    assert (
        client.post(f"/patients/{own}/tags", data={"tag": "x" * 33, "csrf_token": csrf}).status_code
        == 422
    )
    # A colleague sharing the patient's data sees none of these tags, and a nurse cannot tag.
    db.execute(
        "INSERT INTO patient_tags (staff_id, patient_id, tag) VALUES (%s, %s, 'not yours')",
        (w.staff["gp2"], own),
    )
    assert "not yours" not in client.get("/patients").text
    client.cookies.clear()
    csrf = login(client, "nurse.greco")
    assert (
        client.post(f"/patients/{own}/tags", data={"tag": "x", "csrf_token": csrf}).status_code
        == 403
    )
    assert "diuretics" not in client.get("/patients").text
    client.cookies.clear()
    csrf = login(client, "dr.rossi")
    assert (
        client.post(
            f"/patients/{own}/tags",
            data={"tag": "diuretics", "action": "remove", "csrf_token": csrf},
        ).status_code
        == 303
    )
    assert "diuretics" not in client.get(f"/patients/{own}").text


def test_patient_page_states_the_plan_with_own_thresholds_and_marks_episodes(
    client: TestClient, gp_list: GpList, db: psycopg.Connection
) -> None:
    own = gp_list.world.patients["own"]
    db.execute(
        "UPDATE patient_protocols SET overrides = %s WHERE patient_id = %s",
        (
            Jsonb(
                {
                    "rules": {
                        "spo2_low": {
                            "bands": [
                                {"level": "amber", "op": "<=", "value": 90},
                                {"level": "red", "op": "<=", "value": 88},
                            ],
                            "reason": "chronic lung disease",
                        }
                    }
                }
            ),
            own,
        ),
    )
    login(client, "dr.rossi")
    page = client.get(f"/patients/{own}?days=90")
    assert page.status_code == 200
    plan = re.search(r'id="monitoring-plan".*?</section>', page.text, re.S).group(0)
    assert "Oxygen saturation: one reading every 8 h" in plan
    assert "Amber SpO2 ≤ 90 % (this patient&#39;s own threshold)" in plan
    assert "Red SpO2 ≤ 88 % (this patient&#39;s own threshold)" in plan
    chart = re.search(r'<svg class="chart"[^>]*data-metric="spo2".*?</svg>', page.text, re.S)
    marks = re.findall(r'<g class="episode-mark sev-(\d)"><title>([^<]*)</title>', chart.group(0))
    assert marks and marks[0][0] == "2" and "Red:" in marks[0][1] and "still open" in marks[0][1]
    assert "<circle" not in chart.group(0) and "<polygon" in chart.group(0)  # the rollup's bins
    assert 'id="patient-actions"' in page.text  # where the period report's link goes


def test_long_charts_are_drawn_from_the_hourly_rollup(
    client: TestClient, gp_list: GpList, db: psycopg.Connection
) -> None:
    """A reading the rollup has not taken yet is not on the 90-day chart; once ingest's
    housekeeping has refreshed its hour, it is."""
    login(client, "dr.rossi")
    now = datetime.now(UTC)
    at = now - timedelta(days=60)
    store(db, gp_list.quiet, at, {"spo2": 91})

    def bins() -> int:
        page = client.get(f"/patients/{gp_list.quiet}?days=90").text
        chart = re.search(r'data-metric="spo2".*?</svg>', page, re.S).group(0)
        points = re.search(r'<polygon points="([^"]*)"', chart).group(1)
        return len(points.split()) // 2

    before = bins()
    refresh_rollup(db, at, at + timedelta(hours=1), [gp_list.quiet])
    assert bins() == before + 1


def test_schedule_and_trend_rules() -> None:
    assert trend_of("spo2", 88, 97) == "down"
    assert trend_of("spo2", 97, 96.5) == "steady"
    assert trend_of("body_weight", 82.5, 80.9) == "up"
    assert trend_of("spo2", 97, None) is None


def test_the_list_comes_a_page_at_a_time_in_the_order_of_need(
    client: TestClient, gp_list: GpList, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    whole = _rows(client.get("/patients").text)
    assert len(whole) == 6
    pages = [client.get("/patients", params={"per_page": 2, "page": n}) for n in (1, 2, 3)]
    assert [_rows(p.text) for p in pages] == [whole[0:2], whole[2:4], whole[4:6]]
    middle = pages[1].text
    assert '<span class="count">6</span>' in middle and "3–4 of 6" in middle
    # The other pages' links keep the page size (and any filter).
    assert 'href="/patients?per_page=2&amp;page=1"' in middle
    assert 'href="/patients?per_page=2&amp;page=3"' in middle
    assert 'aria-current="page" class="on">2<' in middle
    # The live refresh asks for the same page.
    assert 'data-live="/patients/fragment?per_page=2&amp;page=2"' in middle
    # Past the end: the last page.
    assert _rows(client.get("/patients", params={"per_page": 2, "page": 9}).text) == whole[4:6]
    filtered = client.get("/patients", params={"need": "attention", "per_page": 1, "page": 2})
    assert _rows(filtered.text) == [gp_list.amber]
    assert 'href="/patients?need=attention&amp;per_page=1&amp;page=1"' in filtered.text

    api = client.get("/api/patients", params={"per_page": 4, "page": 2})
    assert [p["id"] for p in api.json()] == whole[4:6]
    assert api.headers["x-total-count"] == "6"
    assert client.get("/api/patients", params={"per_page": 0}).status_code == 422
    assert client.get("/api/patients", params={"per_page": 501}).status_code == 422

    # What was read is what was shown: the audit names the page's patients only.
    (details,) = db.execute(
        "SELECT details FROM audit_log WHERE action = 'patient.list' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert details == {"patients": whole[4:6], "page": 2}
