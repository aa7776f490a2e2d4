"""Journey: a patient's gateway is cut off from the broker for a simulated day, then returns.

A stable COVID home-oximetry patient (pulse oximeter and thermometer, as the demo's kit) measures
as usual. The gateway's broker, a Mosquitto of the test's own, stops for a simulated day: the
gateway keeps reading the devices into its outbox, the server hears nothing, and the alerts
engine's tick, on the same simulated clock, opens a 'not measuring' task for the service centre
(no SMS to anyone). The broker comes back: the gateway drains its outbox, every reading is
stored exactly once, in sequence order, measured in the past; the task resolves itself.

Simulated time: the demo's CatchUpClock replays the day and a half at the demo's speed and then
keeps real pace from the moment connectivity returns, so that the counts taken afterwards do not
move under the test's feet.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from firmware_sim.clock import CatchUpClock
from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS
from telemon.mqtt import BrokerAddress, new_client
from telemon.mqtt import connect as mqtt_connect
from telemon.topics import Channel, topic
from tests.brokers import MosquittoProcess
from tests.database import truncate_data
from tests.fakes import FakeTwilio
from tests.journeys.support import (
    LEAD_IN,
    Platform,
    enrol,
    observation_count,
    one_patient_cohort,
    patient_model,
    quiet_start,
    real_elapsed_wall,
    red_crossing,
    server_settings,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

RULE = "spo2_not_measuring"
SPEED = 7200.0  # the demo's: two simulated hours a second
REPLAY_FROM = timedelta(days=3)  # before the wall clock; the patient enrolled a day earlier
ONLINE = timedelta(hours=3)  # after the first oximetry reading, before the cut
OFFLINE = timedelta(hours=26)  # a simulated day and then some: past the 24 h red band
TICK = 0.5  # real seconds between the engine's full passes: an hour of simulated time


@dataclass(frozen=True)
class Counts:
    stored: int
    last_seq: int
    depth: int


def counts(conn: psycopg.Connection, platform: Platform) -> Counts:
    stats = platform.gateway.outbox.stats()
    stored = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
    return Counts(stored, stats.last_seq, stats.depth)


def task(conn: psycopg.Connection) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM alerts WHERE rule = %s", (RULE,)).fetchall()
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


PlatformFactory = Callable[[str, tuple[str, ...]], Platform]


@pytest.fixture
def make_platform(
    database_url: str, broker: MosquittoProcess, twilio: FakeTwilio, tmp_path: Path
) -> Iterator[PlatformFactory]:
    """The platform for one patient living ``scenario`` with ``device_kinds``."""
    with contextlib.ExitStack() as stack:

        def make(scenario: str, device_kinds: tuple[str, ...]) -> Platform:
            return stack.enter_context(
                Platform(
                    settings=server_settings(database_url, broker.url, twilio),
                    cohort=one_patient_cohort(scenario, device_kinds),
                    enrolled_at={},
                    state_dir=tmp_path / "gateways",
                )
            )

        yield make


def test_a_day_offline_arrives_late_once_in_order_and_the_task_resolves_itself(
    database_url: str,
    broker: MosquittoProcess,
    twilio: FakeTwilio,
    make_platform: PlatformFactory,
) -> None:
    platform = make_platform("stable", ("pulse_oximeter", "thermometer"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_data(conn)
        patient = platform.cohort.patients[0]
        replay_from = datetime.now(UTC) - REPLAY_FROM
        platform.enrolled_at = enrol(conn, platform.cohort, replay_from - timedelta(days=1))
        model = patient_model(patient, platform.enrolled_at[patient.code])
        start = quiet_start(model, replay_from)
        first_oximetry = next(
            m.measured_at
            for m in model.measurements(start, start + timedelta(days=1))
            if m.device is DeviceKind.PULSE_OXIMETER
        )
        planned_cut = first_oximetry + ONLINE
        back = planned_cut + OFFLINE  # connectivity returns, and the clock keeps real pace

        platform.start_ingest()
        platform.start_homes(CatchUpClock(start, SPEED, wall=real_elapsed_wall(back)))
        clock = platform.clock
        assert clock is not None
        # The engine starts once an oximetry reading is stored: earlier, it would rightly open
        # a task for a patient the store knows no SpO2 of, and this journey's task is the day's.
        wait_until(
            lambda: spo2_stored(conn) > 0,
            30,
            "the first SpO2 reading stored",
            state=platform.describe,
        )
        engine = platform.start_engine(tick=TICK)
        wait_until(
            lambda: engine.passes > 0, 10, "the engine's first pass", state=platform.describe
        )
        assert task(conn) is None

        # The broker goes away: the home keeps measuring, the gateway keeps its outbox.
        wait_until(
            lambda: clock.now() >= planned_cut,
            30,
            "the simulated moment of the cut",
            state=platform.describe,
        )
        broker.stop()
        cut = clock.now()
        # A broker that kept its sessions on disk, as a deployment's does.
        assert (broker.workdir / "mosquitto.db").exists()
        before = counts(conn, platform)
        assert before.stored > 0 and before.depth == before.last_seq - before.stored

        opened = wait_until(
            lambda: task(conn), 60, "the 'not measuring' task", state=platform.describe
        )
        assert opened["kind"] == "not_measuring" and opened["state"] == "open"
        assert cut < opened["opened_at"] < back
        wait_until(lambda: clock.caught_up, 60, "a simulated day offline", state=platform.describe)
        offline = counts(conn, platform)
        assert offline.stored == before.stored, "nothing reached the server while offline"
        assert offline.depth == offline.last_seq - offline.stored
        assert offline.last_seq > before.last_seq, "the readings of the day are in the outbox"
        during = task(conn)
        # Amber past 20 h without a reading (two sessions missed), red past 36 h.
        assert during is not None and during["state"] != "resolved" and during["severity"] >= 1
        assert twilio.message_posts == [], "a patient not measuring texts nobody"

        # Connectivity returns (the gateway may publish before start() has seen the port open).
        returned = datetime.now(UTC)
        broker.start()
        wait_until(
            lambda: (c := counts(conn, platform)).depth == 0 and c.stored == c.last_seq,
            60,
            "the outbox drained into the store",
            state=platform.describe,
        )
        resolved = wait_until(
            lambda: (t := task(conn)) is not None and t["state"] == "resolved" and t,
            30,
            "the task resolved",
        )

        final = counts(conn, platform)
        rows = conn.execute(
            "SELECT seq, measured_at, stored_at, metric_id FROM observations ORDER BY seq"
        ).fetchall()
        # Exactly once: every sequence number the gateway gave, each stored once.
        assert [seq for seq, *_ in rows] == list(range(1, final.last_seq + 1))
        # What the devices measured, all of it: the model's readings over the replay.
        produced = observation_count(list(model.measurements(start, back)))
        assert final.last_seq == produced
        # In order: stored in sequence order (one transaction per batch, batches in turn). The
        # sequence is the gateway's order of arrival; two devices' readings measured a minute
        # apart may well arrive the other way round, so measured_at is not held to it.
        assert [r[2] for r in rows] == sorted(r[2] for r in rows)
        # Late: what the outbox kept while offline was measured before connectivity returned,
        # and stored only after; nothing was measured once the clock kept real pace.
        assert final.last_seq == offline.last_seq
        late = [r for r in rows if r[0] > offline.stored]
        assert len(late) == offline.depth
        assert all(measured < back and stored_at >= returned for _, measured, stored_at, _ in late)
        assert {metric for *_, metric in late} == {
            METRICS[m].id for m in ("spo2", "pulse_rate", "body_temperature")
        }

        # The task closed itself, on the engine's clock, and nobody was texted.
        assert resolved["outcome"] == "auto_resolved" and resolved["resolved_by"] is None
        assert resolved["resolved_at"] >= back
        history = [
            kind
            for (kind,) in conn.execute(
                "SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY id", (resolved["id"],)
            )
        ]
        assert history[0] == "opened" and history[-1] == "auto_resolved", history
        # Its episode, a call for the nurses, resolved with it; no SMS was even queued.
        episode = conn.execute(
            "SELECT e.state, e.outcome, e.alert_level FROM episodes e JOIN alerts a "
            "ON a.episode_id = e.id WHERE a.id = %s",
            (resolved["id"],),
        ).fetchone()
        assert episode == ("resolved", "auto_resolved", 0)
        assert conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0
        assert twilio.message_posts == []

        ingest = platform.ingest
        assert ingest is not None
        print(
            f"\noffline day: produced {produced} observations ({offline.depth} kept offline for "
            f"{(back - cut).total_seconds() / 3600:.1f} h), stored {final.stored}, "
            f"duplicates ignored {ingest.duplicates_ignored}, SMS {len(twilio.message_posts)}"
        )


def spo2_stored(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM observations WHERE metric_id = %s", (METRICS["spo2"].id,)
    ).fetchone()[0]


def test_a_deteriorating_patients_late_readings_still_raise_the_red_alert(
    database_url: str,
    broker: MosquittoProcess,
    twilio: FakeTwilio,
    make_platform: PlatformFactory,
) -> None:
    platform = make_platform("covid_deterioration", ("pulse_oximeter",))
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_data(conn)
        patient = platform.cohort.patients[0]
        platform.enrolled_at = enrol(conn, platform.cohort, datetime.now(UTC) - timedelta(days=7))
        model = patient_model(patient, platform.enrolled_at[patient.code])
        horizon = datetime.now(UTC) - timedelta(minutes=10)
        readings = model.measurements(model.profile.enrolled_at, horizon)
        crossing = red_crossing(readings, "covid19_home_oximetry", "spo2_low")
        start = crossing.before.measured_at - LEAD_IN
        back = crossing.red.measured_at + timedelta(minutes=5)
        replayed = list(model.measurements(start, back))
        assert replayed == [crossing.before, crossing.red], "the window holds other readings"

        # The gateway is offline while the patient's SpO2 crosses into the red band.
        platform.start_ingest()
        broker.stop()
        platform.start_homes(CatchUpClock(start, SPEED, wall=real_elapsed_wall(back)))
        clock = platform.clock
        assert clock is not None
        wait_until(
            lambda: clock.caught_up, 30, "the readings measured offline", state=platform.describe
        )
        wait_until(
            lambda: platform.gateway.outbox.stats().depth == observation_count(replayed),
            30,
            "both readings in the outbox",
        )
        engine = platform.start_engine(tick=1.0)

        # Connectivity returns: both readings arrive at once, each an SpO2 in band.
        broker.start()
        wait_until(
            lambda: spo2_stored(conn) == 2, 60, "the late readings stored", state=platform.describe
        )
        passes = engine.passes
        wait_until(
            lambda: engine.passes >= passes + 3,
            30,
            "the engine evaluated them",
            state=platform.describe,
        )
        with conn.cursor(row_factory=dict_row) as cur:
            red = cur.execute(
                "SELECT * FROM alerts WHERE rule = 'spo2_low' AND severity = 2"
            ).fetchall()
        assert len(red) == 1, "two readings in band, the second red: the red alert is due"
        assert red[0]["trigger_value"] == crossing.red.values["spo2"]


def test_the_test_rigs_broker_keeps_a_subscribers_session_across_a_restart(
    tmp_path: Path,
) -> None:
    broker = MosquittoProcess(tmp_path / "mosquitto")
    address = BrokerAddress.parse(broker.start())
    obs_topic = topic("gw-away", Channel.OBS)
    received: list[bytes] = []
    subscribed = threading.Event()
    # The ingest's way: a persistent session under a fixed client id, QoS 1.
    ingest = new_client(address, client_id="ingest-away")
    ingest.on_connect = lambda client, *_: client.subscribe(obs_topic, qos=1)
    ingest.on_subscribe = lambda *_: subscribed.set()
    ingest.on_message = lambda client, userdata, message: received.append(message.payload)
    try:
        mqtt_connect(ingest, address, background=True)
        ingest.loop_start()
        assert subscribed.wait(10)
        ingest.disconnect()  # away; the broker keeps its session and queues for it
        ingest.loop_stop()
        broker.stop()
        broker.start()
        gateway = new_client(address, client_id="gw-away")
        mqtt_connect(gateway, address)
        gateway.loop_start()
        info = gateway.publish(obs_topic, b"a reading", qos=1)
        info.wait_for_publish(5)
        gateway.disconnect()
        gateway.loop_stop()
        assert info.is_published(), "the broker acknowledged the reading"
        mqtt_connect(ingest, address, background=True)  # the same session, back
        ingest.loop_start()
        wait_until(lambda: received, 5, "the queued reading", state=lambda: received)
    except TimeoutError as lost:
        raise AssertionError(f"the broker dropped what it acknowledged: {lost}") from lost
    finally:
        ingest.loop_stop()
        broker.stop()
