"""Faults against the real services (issue #9): every observation a device produced is stored
exactly once, and every alert's SMS reaches each recipient once or shows as failed.

Gateways publish through their real SQLite outbox and paho uplink, ingest runs as real worker
processes, the broker is a Mosquitto of the test's own (so it can be restarted) and, where the
test restarts PostgreSQL, an embedded server of its own. Kill points and outage lengths come
from seeded random generators, so a failure replays the same way. Each scenario prints its
counts (``pytest -s``): produced / stored / duplicates / lost.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import psycopg
import pytest

from console.embedded import EmbeddedPostgres, free_port
from telemon.config import Settings
from telemon.store.migrate import migrate
from tests.alerts_engine import support as engine_support
from tests.brokers import MosquittoProcess
from tests.fakes import FakeTwilio, Reply, fake_twilio  # noqa: F401
from tests.http import http_status
from tests.ingest.support import enroll_patient as enroll
from tests.mqtt_helpers import Collector, received_seqs
from tests.notify import support as notify_support
from tests.reliability.faults_support import (
    REPO,
    SENDER_LOOP,
    Fleet,
    IngestWorkers,
    Producer,
    Tally,
    alerts_environment,
    drain,
    kill,
    stored_rows,
    tally,
    terminate,
)
from tests.waiting import wait_until

SEED = 9  # the number: change it to explore other kill points


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A Mosquitto of this test's own, on a spare port: stopping it disturbs nobody else."""
    mosquitto = MosquittoProcess(tmp_path / "broker")
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A home for a PostgreSQL of the test's own, outside pytest's temporary tree: the server runs
    as another user, and pytest keeps that tree's root closed to other users."""
    path = Path(tempfile.mkdtemp(prefix="telemon-faults-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def check(result: Tally, scenario: str) -> None:
    print(result.line(scenario))
    assert result.lost == 0, result
    assert result.stored == result.produced, result
    assert result.rows == result.stored, f"duplicate rows in observations: {result}"
    assert result.contiguous, f"stored seqs are not exactly 1..produced per gateway: {result}"


# --- ingest SIGKILLed ----------------------------------------------------------------------------

TOTAL = 100_000
CHUNK = 500  # readings appended to one gateway's outbox at a time
KILLS = 20
LEAD = 2_500  # how far the stream runs ahead of a kill point not yet reached by a kill


@pytest.mark.slow
def test_ingest_sigkilled_20_times_during_100000_observations_stores_each_once(
    db: psycopg.Connection, database_url: str, broker: MosquittoProcess, tmp_path: Path
) -> None:
    rng = Random(SEED)
    # Kill points as positions in the stream: after this many observations were produced.
    kill_points = sorted(rng.sample(range(2 * CHUNK, TOTAL - 2 * CHUNK, 100), KILLS))
    enrolled = [enroll(db) for _ in range(5)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    fleet = Fleet.create(tmp_path / "gateways", broker.url, enrolled, start=start)
    workers = IngestWorkers(tmp_path / "ingest", database_url, broker.url)
    # The stream flows on its own while the test kills: chunks of 100 (a batch of the uplink's is
    # 250) at 5,000 a second, held back only when the kills lag behind their points.
    producer = Producer(fleet, TOTAL, chunk=100, rate=5_000, limit=kill_points[0] + LEAD)
    outstanding: list[int] = []
    try:
        workers.spawn()
        with fleet:
            producer.start()
            for n, point in enumerate(kill_points):
                producer.wait_for(point, timeout=120)
                # Strike a worker at work: once it has committed since it started, after a
                # random moment, most often with a batch in hand.
                workers.wait(lambda c: c.commits > 0, 90, "committing")
                time.sleep(rng.uniform(0.0, 0.2))
                workers.kill()
                # Nothing is stored until the next worker runs: this much was on its way.
                outstanding.append(fleet.produced - stored_rows(db, fleet.codes))
                producer.limit = kill_points[n + 1] + LEAD if n + 1 < KILLS else TOTAL
                workers.spawn(wait_ready=False)  # the stream goes on while it starts
            producer.finish(timeout=120)
            drain(db, fleet, timeout=180)
    finally:
        producer.cancel()
        workers.stop()
    print(
        f"[faults] {sum(n > 0 for n in outstanding)} of {KILLS} kills with observations on "
        f"their way (median {sorted(outstanding)[KILLS // 2]}), {workers.restarts} restarts"
    )
    result = tally(db, fleet, workers.duplicates)
    assert result.produced == TOTAL
    check(result, f"ingest SIGKILLed {KILLS} times")


# --- Mosquitto restarted ------------------------------------------------------------------------

STREAM = 30_000


def _produce_during(fleet: Fleet, seconds: float, chunks: int, first: int) -> None:
    """Keep the devices' readings coming for ``seconds``: a fault does not pause the patients."""
    for i in range(chunks):
        fleet.gateways[(first + i) % len(fleet.gateways)].produce(CHUNK)
        time.sleep(seconds / chunks)


@pytest.mark.slow
def test_mosquitto_restarted_mid_stream_stores_each_observation_once(
    db: psycopg.Connection, database_url: str, broker: MosquittoProcess, tmp_path: Path
) -> None:
    rng = Random(SEED)
    steps = STREAM // CHUNK - 8  # 8 chunks are produced while the broker is down
    restarts = sorted(rng.sample(range(5, steps - 5), 2))
    enrolled = [enroll(db) for _ in range(3)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    fleet = Fleet.create(tmp_path / "gateways", broker.url, enrolled, start=start)
    workers = IngestWorkers(tmp_path / "ingest", database_url, broker.url)
    in_pipeline: list[int] = []
    try:
        workers.spawn()
        with fleet:
            for step in range(steps):
                fleet.gateways[step % len(fleet.gateways)].produce(CHUNK)
                time.sleep(0.02)  # a stream, not one burst
                if step in restarts:
                    broker.stop()
                    # Nothing moves now: this much was produced and not yet stored.
                    in_pipeline.append(fleet.produced - stored_rows(db, fleet.codes))
                    _produce_during(fleet, rng.uniform(0.5, 2.5), chunks=4, first=step)
                    broker.start()
            drain(db, fleet, timeout=120)
    finally:
        workers.stop()
    print(f"[faults] broker restarts with observations in the pipeline: {in_pipeline}")
    result = tally(db, fleet, workers.duplicates)
    assert result.produced == STREAM
    check(result, "Mosquitto restarted twice mid-stream")


# --- a gateway cut off for an hour -------------------------------------------------------------

MINUTE = 60  # readings a minute: an oximeter's 1 Hz SpO2


def test_gateway_cut_off_for_a_simulated_hour_delivers_its_backlog_once_in_order(
    db: psycopg.Connection, database_url: str, broker: MosquittoProcess, tmp_path: Path
) -> None:
    patient = enroll(db)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    fleet = Fleet.create(tmp_path / "gateways", broker.url, [patient], start=start, batch_size=100)
    [gateway] = fleet.gateways
    workers = IngestWorkers(tmp_path / "ingest", database_url, broker.url)
    try:
        workers.spawn()
        with Collector(broker.url, patient.obs_topic, persistent=True) as collector, fleet:
            for _ in range(10):  # ten minutes online
                gateway.produce(MINUTE)
                time.sleep(0.02)
            broker.stop()
            cut_from = gateway.produced + 1
            # The hour offline, minute by minute as the device delivers it: real time is
            # compressed, the readings' own timestamps are not.
            for _ in range(60):
                gateway.produce(MINUTE)
                time.sleep(0.02)
            cut_to = gateway.produced
            time.sleep(1.0)  # let the uplink's reconnection attempts fail meanwhile
            assert gateway.outbox.stats().depth >= cut_to - cut_from + 1, "sent into the void"
            broker.start()
            for _ in range(10):  # back online
                gateway.produce(MINUTE)
                time.sleep(0.02)
            drain(db, fleet, timeout=120)
            seqs = received_seqs(
                collector.wait_for(lambda m: len(received_seqs(m, patient.gateway_code)) > 0),
                patient.gateway_code,
            )
    finally:
        workers.stop()
    span = db.execute(
        "SELECT max(o.measured_at) - min(o.measured_at) FROM observations o "
        "JOIN gateways g ON g.id = o.gateway_id WHERE g.code = %s AND o.seq BETWEEN %s AND %s",
        (patient.gateway_code, cut_from, cut_to),
    ).fetchone()[0]
    assert span == timedelta(hours=1) - timedelta(seconds=1)
    # Arrival order at the broker: each reading first arrives after every earlier one. A batch
    # in flight at the cut is sent again after it, so a few may arrive twice (ingest ignores them).
    first_arrivals = list(dict.fromkeys(seqs))
    assert first_arrivals == sorted(first_arrivals)
    print(
        f"[faults] cut off for an hour: seqs {cut_from}..{cut_to} queued in the outbox, "
        f"{len(seqs) - len(first_arrivals)} re-sent after reconnecting"
    )
    result = tally(db, fleet, workers.duplicates)
    assert result.produced == 80 * MINUTE
    check(result, "gateway cut off for a simulated hour")


# --- PostgreSQL restarted ------------------------------------------------------------------------


@pytest.mark.slow
def test_postgres_restarted_under_load_stores_each_observation_once(
    broker: MosquittoProcess, pg_dir: Path, tmp_path: Path
) -> None:
    rng = Random(SEED)
    steps = STREAM // CHUNK - 8
    restarts = sorted(rng.sample(range(5, steps - 5), 2))
    server = EmbeddedPostgres(pg_dir / "data", database="telemon_faults")
    url = server.start()
    workers = IngestWorkers(tmp_path / "ingest", url, broker.url)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
        with psycopg.connect(url, autocommit=True) as conn:
            enrolled = [enroll(conn) for _ in range(3)]
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
        fleet = Fleet.create(tmp_path / "gateways", broker.url, enrolled, start=start)
        workers.spawn()
        with fleet:
            for step in range(steps):
                fleet.gateways[step % len(fleet.gateways)].produce(CHUNK)
                time.sleep(0.02)
                if step in restarts:
                    server.stop()  # a fast shutdown: open transactions are rolled back
                    _produce_during(fleet, rng.uniform(0.5, 2.0), chunks=4, first=step)
                    server.start()
            with psycopg.connect(url, autocommit=True) as conn:
                drain(conn, fleet, timeout=120)
        workers.stop()
        with psycopg.connect(url, autocommit=True) as conn:
            result = tally(conn, fleet, workers.duplicates)
    finally:
        workers.stop()
        server.stop()
    print(f"[faults] batch writes failed and retried: {workers.logged('batch write failed')}")
    assert result.produced == STREAM
    check(result, "PostgreSQL restarted twice under load")


# --- alerts: the engine killed between writing a notification and sending it ---------------------

# While the test holds this advisory lock, a trigger makes every claim of a notification (its
# move to 'sending', which the sender commits before calling Twilio) wait inside the sender's
# transaction: the row is written, the SMS not yet sent, and the test kills the process there.
HOLD = (0x0FA17, 9)
HOLD_CLAIMS = f"""
CREATE FUNCTION faults_hold_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({HOLD[0]}, {HOLD[1]});
    RETURN NEW;
END $$;
CREATE TRIGGER faults_hold_claims BEFORE UPDATE ON notifications FOR EACH ROW
    WHEN (NEW.status = 'sending' AND OLD.status <> 'sending')
    EXECUTE FUNCTION faults_hold_claims();
"""
RELEASE_CLAIMS = """
DROP TRIGGER IF EXISTS faults_hold_claims ON notifications;
DROP FUNCTION IF EXISTS faults_hold_claims();
"""
_HELD_CLAIM = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND classid = %s AND objid = %s AND objsubid = 2"
)


def start_alerts_engine(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("a") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "console", "alerts", "--health-port", "0"],
            cwd=REPO,
            env=env,
            stderr=stderr,
        )


def red_spo2_due_at_the_next_start(
    db: psycopg.Connection, patients: list[int], env: dict[str, str]
) -> None:
    """Leave ``patients`` one reading short of a red SpO2 alert, then add that reading.

    An alert opens on the second red reading in as many passes: the first pass is ``telemon
    alerts --once``, the second the full pass of the next engine to start.
    """
    now = datetime.now(UTC)
    for patient in patients:
        engine_support.add_readings(db, patient, "spo2", [(now - timedelta(minutes=20), 88.0)])
    once = subprocess.run(
        [sys.executable, "-m", "console", "alerts", "--once"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stdout + once.stderr
    assert engine_support.alerts(db, rule="spo2_low") == []
    for patient in patients:
        engine_support.add_readings(db, patient, "spo2", [(now - timedelta(minutes=10), 87.0)])


def test_alerts_engine_killed_between_writing_and_sending_texts_each_recipient_once(
    db: psycopg.Connection,
    database_url: str,
    fake_twilio: FakeTwilio,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    cohort = engine_support.add_cohort(db, n_patients=3)
    env = alerts_environment(
        database_url, fake_twilio, "https://telemon.example.it", engine_support.SENDER_NUMBER
    )
    log = tmp_path / "alerts.log"
    red_spo2_due_at_the_next_start(db, cohort.patients, env)
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute(HOLD_CLAIMS)
        try:
            holder.execute("SELECT pg_advisory_lock(%s, %s)", HOLD)
            engine = start_alerts_engine(env, log)
            try:
                try:
                    wait_until(lambda: db.execute(_HELD_CLAIM, HOLD).fetchone(), 60)
                except TimeoutError:
                    raise AssertionError(f"no claim held: {log.read_text()}") from None
                [held_backend] = db.execute(_HELD_CLAIM, HOLD).fetchone()
                written = engine_support.notifications(db)
            finally:
                kill(engine)
            holder.execute("SELECT pg_advisory_unlock_all()")
            # The dead process's transaction goes only when its backend notices it is gone.
            wait_until(
                lambda: (
                    not db.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (held_backend,)
                    ).fetchone()
                )
            )
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            holder.execute(RELEASE_CLAIMS)
    # Killed with every alert and its SMS rows committed, a claim in hand and nothing sent.
    assert len(written) == 2 * len(cohort.patients)
    assert {n["status"] for n in written} == {"pending"}
    assert fake_twilio.message_posts == []

    engine = start_alerts_engine(env, log)
    try:
        wait_until(lambda: {n["status"] for n in engine_support.notifications(db)} == {"sent"}, 60)
        time.sleep(1.0)  # room for anything a restart might wrongly add
    finally:
        assert terminate(engine) == 0, log.read_text()

    rows = engine_support.notifications(db)
    opened = engine_support.alerts(db, rule="spo2_low")
    posts = fake_twilio.message_posts
    print(
        f"[faults] alerts engine killed between writing and sending: alerts {len(opened)} / "
        f"notification rows {len(rows)} / SMS {len(posts)} / "
        f"duplicates {len(posts) - len({(p.form['To'], p.form['Body']) for p in posts})}"
    )
    assert sorted(a["patient_id"] for a in opened) == sorted(cohort.patients)
    assert len(rows) == len(written)  # the restart's full pass wrote nothing twice
    assert {(n["status"], n["attempts"]) for n in rows} == {("sent", 1)}
    recipients = {
        (alert["id"], phone)
        for alert in opened
        for phone in (engine_support.GP_PHONE, engine_support.DUTY_PHONE)
    }
    assert sorted((n["alert_id"], n["to_address"]) for n in rows) == sorted(recipients)
    assert sorted((p.form["To"], p.form["Body"]) for p in posts) == sorted(
        (n["to_address"], n["body"]) for n in rows
    )
    assert {n["provider_id"] for n in rows} == {m["sid"] for m in fake_twilio.messages}


def test_an_alerts_engine_that_cannot_evaluate_reports_unhealthy_and_says_why(
    db: psycopg.Connection,
    database_url: str,
    fake_twilio: FakeTwilio,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    cohort = engine_support.add_cohort(db)
    # A public URL too long for any SMS: every alert's text fails to render, in the evaluator.
    env = alerts_environment(
        database_url, fake_twilio, "https://" + "x" * 400, engine_support.SENDER_NUMBER
    )
    red_spo2_due_at_the_next_start(db, cohort.patients, env)
    log = tmp_path / "alerts.log"
    port = free_port()
    with log.open("a") as stderr:
        engine = subprocess.Popen(
            [sys.executable, "-m", "console", "alerts", "--health-port", str(port)],
            cwd=REPO,
            env=env,
            stderr=stderr,
        )
    try:
        wait_until(lambda: "MessageTooLongError" in log.read_text() or engine.poll() is not None)
        # Unable to evaluate anyone, it must say so, and keep retrying rather than give up.
        health = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: http_status(health) == 503, timeout=10)
        alive = engine.poll() is None
    finally:
        terminate(engine)
    assert alive, log.read_text()
    assert engine_support.alerts(db, rule="spo2_low") == []  # its pass was rolled back


# --- alerts: Twilio failing and timing out, the sender killed -------------------------------------

SENDER_KILLS_AT_RANDOM = 2


def test_sms_under_twilio_errors_timeouts_and_kills_are_sent_once_or_visibly_failed(
    db: psycopg.Connection,
    database_url: str,
    fake_twilio: FakeTwilio,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    rng = Random(SEED)
    cohort = notify_support.add_cohort(db)
    settings = Settings(
        public_url=notify_support.PUBLIC_URL,
        language="it",
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_from=notify_support.SENDER_NUMBER,
        twilio_base_url=fake_twilio.base_url,
    )
    # Eight red episodes, each for the GP and the duty phone.
    notify_support.open_red_episodes(db, cohort, settings, 8, datetime.now(UTC))

    # How Twilio answers the first sixteen requests, shuffled by the seed: accepted, 500, a
    # timeout after or before accepting, and two held until the sender is killed mid-call.
    kinds = ["ok"] * 5 + ["500"] * 5 + ["late", "late", "lost", "lost", "held", "held-lost"]
    rng.shuffle(kinds)
    replies = {
        "ok": Reply.ok,
        "500": Reply.server_error,
        "late": lambda: Reply.slow(1.5, accept=True),
        "lost": lambda: Reply.slow(1.5, accept=False),
    }
    script: list[Reply] = []
    kills: list[tuple[int, threading.Event | None]] = []  # (after this many requests, release)
    for index, kind in enumerate(kinds):
        if kind.startswith("held"):
            release = threading.Event()
            script.append(Reply.held(release, accept=kind == "held"))
            kills.append((index + 1, release))
        else:
            script.append(replies[kind]())
    held_at = {k for k, _ in kills}
    kills += [(k, None) for k in rng.sample(sorted(set(range(2, 13)) - held_at), 2)]
    kills.sort(key=lambda kill_point: kill_point[0])
    fake_twilio.reply_with(*script)

    args = {
        "database_url": database_url,
        "sid": fake_twilio.account_sid,
        "token": fake_twilio.auth_token,
        "sender": notify_support.SENDER_NUMBER,
        "base_url": fake_twilio.base_url,
        "public_url": notify_support.PUBLIC_URL,
        "timeout": 0.5,
        "max_attempts": 3,
        "first_delay": 0.2,
    }

    def start_sender() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", SENDER_LOOP, json.dumps(args)], cwd=REPO)

    sender = start_sender()
    try:
        for requests, release in kills:
            fake_twilio.wait_for_posts(requests, timeout=60)
            if release is None:
                time.sleep(rng.uniform(0.0, 0.08))  # anywhere: claiming, calling, recording
            kill(sender)
            if release is not None:
                release.set()  # the fake answers a caller that is gone
            sender = start_sender()
        wait_until(
            lambda: (
                not db.execute(
                    "SELECT 1 FROM notifications WHERE status IN ('pending', 'sending')"
                ).fetchone()
            ),
            90,
            "notifications still pending or in flight",
        )
    finally:
        terminate(sender)

    rows = notify_support.notifications(db)
    accepted = Counter((m["to"], m["body"]) for m in fake_twilio.messages)
    sids = {(m["to"], m["body"]): m["sid"] for m in fake_twilio.messages}
    sent = [n for n in rows if n["status"] == "sent"]
    failed = [n for n in rows if n["status"] == "failed"]
    print(
        f"[faults] SMS under Twilio 500s, timeouts and {len(kills)} sender kills: "
        f"notifications {len(rows)} / sent {len(sent)} / failed {len(failed)} / "
        f"SMS accepted {sum(accepted.values())} / duplicates "
        f"{sum(n - 1 for n in accepted.values() if n > 1)} / dropped "
        f"{len(rows) - len(sent) - len(failed)}"
    )
    assert len(rows) == 16
    assert len(sent) + len(failed) == len(rows)  # every row settled: none silently dropped
    for row in sent:  # exactly once, and the row names that message
        assert accepted[row["to_address"], row["body"]] == 1, row
        assert row["provider_id"] == sids[row["to_address"], row["body"]]
    failures = {
        e["details"]["notification_id"]: e for e in notify_support.events(db, "notify_failed")
    }
    for row in failed:  # never sent, and visibly so: on the row and in the alert's history
        assert accepted[row["to_address"], row["body"]] == 0, row
        assert row["last_error"]
        assert failures[row["id"]]["details"]["will_retry"] is False
    assert sum(accepted.values()) == len(sent)  # no SMS that no row accounts for
    # The call Twilio never received, cut by a kill, cannot be known to have been sent.
    lost_call = fake_twilio.message_posts[kinds.index("held-lost")].form
    [row] = [
        n for n in rows if (n["to_address"], n["body"]) == (lost_call["To"], lost_call["Body"])
    ]
    assert row["status"] == "failed"
