"""The platform assembled as ``telemon demo`` assembles it, for journeys on simulated time.

Everything is real: simulated BLE devices on a bumble link read by the real gateway software,
a Mosquitto broker of the test's own, the ingest service, the alerts engine sending SMS to the
fake Twilio server, and the dashboard in a uvicorn thread. Only time is simulated, through the
same clocks the demo uses.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from alerts.engine import AlertsService
from alerts.protocol import load_protocols
from console.cohort import Cohort, DemoPatient, demo_cohort, seed
from console.demo import DEMO_PASSWORD
from console.embedded import free_port
from console.fleet import SimulatedFleet
from dashboard.accounts import set_password
from dashboard.app import create_app
from dashboard.server import BackgroundServer
from firmware_sim.clock import SimClock
from firmware_sim.home import PROTOCOL_CONDITIONS
from firmware_sim.physiology import PatientModel, PatientProfile, SimulatedMeasurement
from firmware_sim.scenarios import get_scenario
from gateway.runtime import GatewayRuntime
from ingest.service import IngestService
from telemon.background import BackgroundLoop
from telemon.config import Settings
from telemon.device_kinds import DeviceKind
from telemon.flags import UNRELIABLE_FLAGS
from tests.fakes import FakeTwilio

DUTY_PHONE = "+390212345678"  # the service centre's duty phone, unlike any staff phone
SENDER_NUMBER = "+15005550006"
NURSE = "nurse.greco"  # the demo cohort's service-centre nurse
FLEET_SEED = 1  # SimulatedFleet's default: the first patient's model is seeded with it
LEAD_IN = timedelta(hours=2)  # a second of real time at the demo's speed, for the homes to start


def one_patient_cohort(scenario: str, device_kinds: tuple[str, ...]) -> Cohort:
    """The demo's staff and its first patient (COVID home oximetry), living ``scenario`` with
    only ``device_kinds``; a fresh gateway id, so a broker's retained state never mixes runs."""
    cohort = demo_cohort(1)
    first = cohort.patients[0]
    devices = tuple((address, kind) for address, kind in first.devices if kind in device_kinds)
    assert len(devices) == len(device_kinds), f"the demo patient has no {device_kinds}"
    patient = replace(
        first, scenario=scenario, devices=devices, gateway_code=f"gw-{uuid.uuid4().hex[:10]}"
    )
    return Cohort(cohort.staff, (patient,))


def enrol(conn: psycopg.Connection, cohort: Cohort, enrolled_at: datetime) -> dict[str, datetime]:
    """Seed the cohort as the demo does; the nurse gets the demo password. Returns each
    patient's enrolment as stored (the patient model's day 0 must match it exactly)."""
    seed(conn, cohort, service_centre_phone=DUTY_PHONE, enrolled_at=enrolled_at)
    set_password(conn, NURSE, DEMO_PASSWORD)
    return dict(
        conn.execute(
            "SELECT code, enrolled_at FROM patients WHERE code = ANY(%s)",
            ([p.code for p in cohort.patients],),
        ).fetchall()
    )


def patient_model(patient: DemoPatient, enrolled_at: datetime) -> PatientModel:
    """The model SimulatedFleet gives its first patient: what their devices will measure."""
    profile = PatientProfile(
        patient_id=patient.code,
        conditions=frozenset({PROTOCOL_CONDITIONS[patient.protocol]}),
        enrolled_at=enrolled_at,
        devices=frozenset(DeviceKind(kind) for _, kind in patient.devices),
    )
    return PatientModel(profile, get_scenario(patient.scenario), FLEET_SEED)


def quiet_start(model: PatientModel, after: datetime, lead_in: timedelta = LEAD_IN) -> datetime:
    """A moment from which a replay may start: ``lead_in`` before the first reading after
    ``after`` that follows a quiet spell at least that long.

    The homes start living from whatever time the clock reads once their devices are up, a
    little after the replay's start at simulated speed; a reading in that lead-in would be
    skipped, and the counts of what was produced would be off.
    """
    readings = model.measurements(after - timedelta(days=1), after + timedelta(days=2))
    previous: datetime | None = None
    for reading in readings:
        if reading.measured_at >= after and (
            previous is None or reading.measured_at - previous >= lead_in
        ):
            return reading.measured_at - lead_in
        previous = reading.measured_at
    raise AssertionError(f"no quiet {lead_in} in the two days after {after}")


@dataclass(frozen=True)
class Crossing:
    """Two consecutive readings of a patient's oximeter that confirm ``rule`` straight at red:
    the one before, in band, and the red one."""

    before: SimulatedMeasurement
    red: SimulatedMeasurement


def red_crossing(readings: Iterable[SimulatedMeasurement], protocol: str, rule: str) -> Crossing:
    """The first such pair among ``readings`` for a rule confirmed by two readings."""
    spec = load_protocols()[protocol].rule(rule)
    # The search below mirrors the rule as it is written; say so if it changes.
    assert spec.confirm.count == 2 and {b.op for b in spec.bands} == {"<="}, spec
    amber = next(b.value for b in spec.bands if b.level == "amber")
    red = next(b.value for b in spec.bands if b.level == "red")
    spot_checks = [
        m
        for m in readings
        if m.device is DeviceKind.PULSE_OXIMETER
        and "spo2" in m.values
        and not UNRELIABLE_FLAGS.intersection(m.flags)
    ]
    for before, reading in itertools.pairwise(spot_checks):
        if before.values["spo2"] <= amber and reading.values["spo2"] <= red:
            return Crossing(before, reading)
    raise AssertionError(f"the model's SpO2 never reaches {red} %: {spot_checks}")


def observation_count(measurements: list[SimulatedMeasurement]) -> int:
    """Observations the gateway makes of these readings: one per metric with a value."""
    return sum(len(m.values) for m in measurements)


def device_time(measurement: SimulatedMeasurement) -> datetime:
    """When the gateway says the reading was measured: the device's clock ticks in whole
    seconds (GATT Date Time), the model's does not."""
    return measurement.measured_at.replace(microsecond=0)


def server_settings(database_url: str, mqtt_url: str, twilio: FakeTwilio) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        language="it",
        ingest_metrics_port=0,
        ingest_batch_ms=50,
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        twilio_from=SENDER_NUMBER,
        twilio_base_url=twilio.base_url,
        service_centre_phone=DUTY_PHONE,
    )


@dataclass
class Platform:
    """The server side and the simulated home, started in the demo's order, stopped in reverse."""

    settings: Settings
    cohort: Cohort
    enrolled_at: dict[str, datetime]
    state_dir: Path
    clock: SimClock | None = None
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    ingest: IngestService | None = None
    engine: AlertsService | None = None
    dashboard: BackgroundServer | None = None
    fleet: SimulatedFleet | None = None

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def start_ingest(self) -> None:
        self.ingest = IngestService(
            self.settings,
            client_id=f"journey-ingest-{uuid.uuid4().hex[:8]}",
            metrics_host="127.0.0.1",
        )
        self.ingest.start()
        self.stack.callback(self.ingest.stop)

    def start_dashboard(self) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        assert self.settings.database_url is not None
        self.dashboard = BackgroundServer(
            create_app(
                self.settings.database_url,
                mqtt_url=self.settings.mqtt_url,
                public_url=url,
                language="en",
                twilio_auth_token="",
                sse_interval=0.25,
            ),
            "127.0.0.1",
            port,
        )
        self.dashboard.start()
        self.stack.callback(self.dashboard.stop)
        # SMS links point at this dashboard, as the demo's do.
        self.settings = self.settings.model_copy(update={"public_url": url})
        return url

    def start_homes(self, clock: SimClock) -> None:
        """Start the simulated homes on ``clock``; make it just before: an accelerated clock
        runs from the moment it is made, and the homes live from the time it then reads."""
        self.clock = clock
        self.fleet = SimulatedFleet(
            self.cohort,
            mqtt_url=self.settings.mqtt_url or "",
            state_dir=self.state_dir,
            clock=clock,
            enrolled_at=self.enrolled_at,
            seed=FLEET_SEED,
            status_interval=5.0,
        )
        simulation = BackgroundLoop(self.fleet.run, name="simulated-homes")
        simulation.start()
        self.stack.callback(simulation.stop)

    def start_engine(self, *, tick: float) -> AlertsService:
        """The alerts engine on the simulated clock: escalation timers and missing-data rules
        follow simulated time, as in the demo."""
        assert self.clock is not None, "start the homes first: the engine shares their clock"
        self.engine = AlertsService(
            self.settings, clock=self.clock.now, tick=tick, send_interval=0.2, health_port=None
        )
        self.engine.start()
        self.stack.callback(self.engine.stop)
        assert self.engine.wait_listening(), "the alerts engine is not listening"
        return self.engine

    def describe(self) -> str:
        """The pipeline's state in a line, for a timeout to report."""
        parts = []
        if self.fleet is not None and self.fleet.gateways:
            stats = self.gateway.outbox.stats()
            parts.append(
                f"outbox last_seq {stats.last_seq} depth {stats.depth}; "
                f"uplink {self.gateway.uplink.counters}"
            )
        if self.ingest is not None:
            parts.append(
                f"ingest connected {self.ingest.subscriber.is_connected} stored "
                f"{self.ingest.observations_stored} duplicates {self.ingest.duplicates_ignored} "
                f"rejected {self.ingest.messages_rejected}"
            )
        if self.clock is not None:
            parts.append(f"simulated now {self.clock.now().isoformat()}")
        return "; ".join(parts)

    @property
    def gateway(self) -> GatewayRuntime:
        assert self.fleet is not None and self.fleet.gateways, "the homes have not started"
        return self.fleet.gateways[0]


def real_elapsed_wall(anchor: datetime) -> Callable[[], datetime]:
    """A wall clock that reads ``anchor`` now and then keeps real time: CatchUpClock replays
    up to it at speed and then keeps real pace, as the demo's clock does at today's wall."""
    origin = time.monotonic()
    return lambda: anchor + timedelta(seconds=time.monotonic() - origin)
