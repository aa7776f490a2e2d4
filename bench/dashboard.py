"""Server time of the clinician's workspace at a cooperative's scale.

    python bench/dashboard.py [--patients 10000] [--days 90] [--per-gp 200] [--runs 50]
                              [--engine-every 12] [--keep]

Creates its own database from TELEMON_BENCH_DATABASE_URL (default: the local server) with the
cooperative of bench/_dashboard_store.py: 10,000 patients and 10 M readings over 90 days by
default, the hourly rollup refreshed, and the findings and episodes the real alerts engine made
of them (a full pass every ``--engine-every`` hours, a nurse resolving what has been open a
day). ``--keep`` keeps the database and reuses it on the next run with the same sizes.

Then it asks the real FastAPI app, in-process through httpx (fastapi's TestClient), signed in as
a nurse and as a GP with ``--per-gp`` patients, and prints the time of each request:

* ``triage queue:`` GET /triage, the nurse whose centres have the most open episodes;
* ``patient list:`` GET /patients, the GP's list of ``--per-gp`` patients: its first page (50,
  the most in need; all of them ranked);
* ``patient page 30 days:`` / ``patient page 90 days:`` GET /patients/{id}?days=N, the GP's
  patients in turn;
* ``period report pdf:`` GET /patients/{id}/report.pdf over 90 days, the GP's patients with the
  most episodes first (the first request, which loads WeasyPrint and its fonts, apart);
* ``closing report pdf:`` the discharge's closing report of the busiest patient over their whole
  monitoring (dashboard.period_reports.close: content, closing section, HTML, PDF, FHIR Bundle
  with every reading, the frozen row), each run rolled back so every run closes the same patient.

Under each, the baseline in the same run: the queries the route runs, called directly, without
HTTP, rendering, audit or (for the PDF) the layout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._dashboard_store import PASSWORD, enrol, run_engine, store_readings
from bench._fleet_setup import create_database, drop_database, percentile
from bench._quality_store import ALERT_TABLES
from dashboard import clinical, glance, period_reports, report
from dashboard.app import create_app
from dashboard.authz import Principal
from dashboard.web import LOCAL_TZ
from telemon.store.migrate import migrate

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# A kept database's comment: how far it was built.
READINGS = "telemon bench dashboard: readings"
BUILT = "telemon bench dashboard: complete"


def timed(runs: int, call: Callable[[int], object]) -> list[float]:
    """Milliseconds of ``runs`` calls, each given its index."""
    out = []
    for i in range(runs):
        start = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def line(label: str, ms: list[float]) -> str:
    return f"{label}: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms"


def _exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def build(url: str, args: argparse.Namespace, now: datetime) -> None:
    start = now - timedelta(days=args.days)
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        if _stage(conn) == READINGS:
            # A kept database whose engine run was cut short: its readings serve again.
            last = conn.execute("SELECT max(measured_at) FROM observations").fetchone()[0]
            now = last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            start = now - timedelta(days=args.days)
            conn.execute(f"TRUNCATE {', '.join(ALERT_TABLES)} RESTART IDENTITY")
        else:
            enrol(
                conn,
                patients=args.patients,
                per_gp=args.per_gp,
                per_centre=args.per_centre,
                start=start,
            )
            stored = store_readings(conn, start=start, now=now)
            _mark(conn, READINGS)
            print(
                f"stored {stored:,} readings of {args.patients:,} patients over {args.days} "
                f"days, rollup refreshed, in {time.perf_counter() - began:.0f} s",
                flush=True,
            )
        engine_start = max(start, now - timedelta(days=args.engine_days))
        made = run_engine(
            conn, start=engine_start, now=now, every=timedelta(hours=args.engine_every)
        )
        episodes, open_now, findings, sms = conn.execute(
            "SELECT (SELECT count(*) FROM episodes), "
            "(SELECT count(*) FROM episodes WHERE state <> 'resolved'), "
            "(SELECT count(*) FROM alerts), (SELECT count(*) FROM notifications)"
        ).fetchone()
        weeks = args.patients * (now - engine_start).days / 7
        print(
            f"engine: {made.passes} full passes in {made.seconds:.0f} s; {findings:,} findings, "
            f"{episodes:,} episodes ({episodes / weeks:.3f} per patient-week), {open_now:,} open "
            f"now, {made.resolved_by_nurse:,} resolved by the nurse, {sms:,} SMS rows",
            flush=True,
        )
        _mark(conn, BUILT)


def _stage(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (conn.info.dbname,),
    ).fetchone()
    return row[0] if row else None


def _mark(conn: psycopg.Connection, stage: str) -> None:
    """The database's comment says how far it was built: what a kept one can reuse."""
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(conn.info.dbname), sql.Literal(stage)
        )
    )


def sign_in(client: TestClient, username: str) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    if response.status_code != 303:
        raise SystemExit(f"could not sign in as {username}: {response.status_code}")


def principal(conn: psycopg.Connection, username: str) -> Principal:
    staff_id, name, role, organisation_id = conn.execute(
        "SELECT id, display_name, role, organisation_id FROM staff WHERE username = %s",
        (username,),
    ).fetchone()
    return Principal(
        staff_id, username, name, role, "en", "", "127.0.0.1", organisation_id=organisation_id
    )


def fetch(client: TestClient, path: str) -> bytes:
    response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: {response.status_code}")
    return response.content


def get(client: TestClient, path: str) -> Callable[[int], object]:
    return lambda _: fetch(client, path)


def measure(url: str, runs: int, days: int) -> None:
    now = datetime.now(UTC)
    app = create_app(url, public_url="http://testserver", language="en", twilio_auth_token="")
    with psycopg.connect(url, autocommit=True) as conn:
        gp_name, patient_count = conn.execute(
            "SELECT s.username, count(*) FROM staff s JOIN patients p ON p.gp_id = s.id "
            "GROUP BY s.id ORDER BY s.id LIMIT 1"
        ).fetchone()
        # The nurse with the longest queue: the page a busy service centre opens.
        nurse_name = conn.execute(
            "SELECT s.username FROM staff s "
            "JOIN care_team_members m ON m.staff_id = s.id "
            "JOIN patients p ON p.care_team_id = m.care_team_id "
            "LEFT JOIN episodes e ON e.patient_id = p.id AND e.state <> 'resolved' "
            "WHERE s.role = 'nurse' GROUP BY s.id ORDER BY count(e.id) DESC, s.id LIMIT 1"
        ).fetchone()[0]
        gp, nurse = principal(conn, gp_name), principal(conn, nurse_name)
        # The GP's patients, those with the most episodes first: the pages the GP opens most.
        patients = [
            row[0]
            for row in conn.execute(
                "SELECT p.id FROM patients p LEFT JOIN episodes e ON e.patient_id = p.id "
                "WHERE p.gp_id = %s GROUP BY p.id ORDER BY count(e.id) DESC, p.id",
                (gp.id,),
            )
        ]
        queue = len(clinical.triage_queue(conn, nurse))
        print(
            f"{nurse_name}'s queue holds {queue} episodes; {gp_name} has {patient_count} patients"
        )

        with TestClient(app, follow_redirects=False) as client:
            sign_in(client, nurse_name)
            get(client, "/triage")(0)  # warm-up: templates compiled, pool filled
            print(line("triage queue", timed(runs, get(client, "/triage"))))
            baseline = timed(runs, lambda _: clinical.triage_page(conn, nurse))
            print("  " + line("baseline, the queue's query alone", baseline))

            client.cookies.clear()
            sign_in(client, gp_name)
            get(client, "/patients")(0)
            print(line("patient list", timed(runs, get(client, "/patients"))))
            baseline = timed(runs, lambda _: glance.patient_list(conn, gp, now=now))
            print("  " + line("baseline, the list's queries alone", baseline))
            whole = get(client, f"/patients?per_page={patient_count}")
            print("  " + line(f"all {patient_count} on one page (?per_page=)", timed(runs, whole)))

            for span in (30, 90):

                def page(i: int, span: int = span) -> None:
                    get(client, f"/patients/{patients[i % len(patients)]}?days={span}")(i)

                def charts(i: int, span: int = span) -> None:
                    patient = patients[i % len(patients)]
                    for key in clinical.charted_metrics(conn, gp, patient, now=now):
                        clinical.series(conn, gp, patient, key, span, now=now)

                page(0)
                print(line(f"patient page {span} days", timed(runs, page)))
                print("  " + line("baseline, the charts' series alone", timed(runs, charts)))

            today = now.astimezone(LOCAL_TZ).date()
            period = report.Period(today - timedelta(days=days - 1), today)
            query = f"from={period.first.isoformat()}&to={period.last.isoformat()}"
            pdf_runs = max(3, runs // 5)

            def pdf(i: int) -> bytes:
                return fetch(client, f"/patients/{patients[i % len(patients)]}/report.pdf?{query}")

            first = timed(1, pdf)[0]
            print(line("period report pdf", timed(pdf_runs, pdf)))
            contents = timed(
                pdf_runs,
                lambda i: report.build(
                    conn, gp, patients[i % len(patients)], period, language="en"
                ),
            )
            print("  " + line("baseline, the report's content alone (no layout)", contents))
            print(f"  the first PDF of the process (WeasyPrint and fonts loaded): {first:.0f} ms")
            busiest = pdf(0)
            readings, episodes = conn.execute(
                "SELECT (SELECT count(*) FROM observations WHERE patient_id = %(p)s "
                "AND measured_at >= %(since)s), "
                "(SELECT count(*) FROM episodes WHERE patient_id = %(p)s "
                "AND opened_at >= %(since)s)",
                {"p": patients[0], "since": now - timedelta(days=days)},
            ).fetchone()
            print(
                f"  the busiest patient's: {readings:,} readings, {episodes} episodes, "
                f"{len(PdfReader(io.BytesIO(busiest)).pages)} pages, {len(busiest):,} bytes"
            )
    closing_report(url, gp, patients[0], pdf_runs)


def closing_report(url: str, user: Principal, patient_id: int, runs: int) -> None:
    """The discharge's closing report of ``patient_id`` today, ``runs`` times, each rolled back
    (period_reports.close runs in the discharge's transaction; the bench's has nothing else)."""
    today = datetime.now(LOCAL_TZ).date()
    frozen: tuple[bytes, str] | None = None
    with psycopg.connect(url) as conn:

        def close(_: int) -> None:
            nonlocal frozen
            try:
                period_reports.close(
                    conn,
                    user,
                    patient_id,
                    reason="bench",
                    discharged_on=today,
                    discharged_at=datetime.now(UTC),
                    public_url="http://testserver",
                )
                row = conn.execute(
                    "SELECT pdf, fhir_bundle::text FROM period_reports "
                    "WHERE kind = 'closing' AND patient_id = %s",
                    (patient_id,),
                ).fetchone()
                frozen = (bytes(row[0]), row[1])
            finally:
                conn.rollback()

        print(line("closing report pdf", timed(runs, close)))
        assert frozen is not None
        pdf, bundle = frozen
        enrolled = conn.execute(
            "SELECT enrolled_at FROM patients WHERE id = %s", (patient_id,)
        ).fetchone()[0]
        days = (today - enrolled.astimezone(LOCAL_TZ).date()).days + 1
        print(
            f"  the busiest patient's over {days} days: {len(PdfReader(io.BytesIO(pdf)).pages)} "
            f"pages, {len(pdf):,} bytes; Bundle {len(json.loads(bundle)['entry']):,} entries, "
            f"{len(bundle):,} bytes"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-gp", type=int, default=200)
    parser.add_argument("--per-centre", type=int, default=2_500)
    parser.add_argument("--engine-every", type=float, default=12, help="hours between passes")
    parser.add_argument("--engine-days", type=int, default=30, help="the engine's last days")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database, reuse it")
    args = parser.parse_args()
    admin = os.environ.get("TELEMON_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if args.keep:
        name = (
            f"telemon_bench_dashboard_{args.patients}_{args.days}_{args.per_gp}"
            f"_{args.per_centre}".replace(".", "_")
        )
        url = psycopg.conninfo.make_conninfo(admin, dbname=name)
        if not _exists(admin, name):
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(url) as conn:
            migrate(conn)  # a new database, or a migration added since
            stage = _stage(conn)
        if stage == BUILT:
            print(f"reusing {name} (its data ends when it was built)")
        elif stage == READINGS:
            print(f"reusing {name}'s readings; the engine runs again")
            build(url, args, now)
        else:
            drop_database(admin, name)  # cut short before its readings were whole
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(url) as conn:
                migrate(conn)
            build(url, args, now)
        measure(url, args.runs, args.days)
        return
    name, url = create_database(admin)
    try:
        build(url, args, now)
        measure(url, args.runs, args.days)
    finally:
        drop_database(admin, name)


if __name__ == "__main__":
    main()
