"""The service status ``/status`` reports to operators: the database, its read replica's lag,
the broker and counts.

``/healthz`` says none of it: it answers anyone, so it only says the process is alive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import psycopg

from dashboard.databases import Databases, ReplicaLag
from telemon.mqtt import BrokerAddress, BrokerUnavailable, probe


@dataclass(frozen=True, slots=True)
class StoreStatus:
    reachable: bool
    error: str | None = None
    schema_version: int | None = None
    backend: str | None = None
    patients: int | None = None
    gateways_online: int | None = None
    gateways: int | None = None
    observations_24h: int | None = None
    open_alerts: int | None = None
    rejected_24h: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    url: str | None  # host and port: no user name, no password
    reachable: bool | None  # None: no broker configured for this process
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    store: StoreStatus
    broker: BrokerStatus
    # None: no replica configured. An unreachable or lagging replica leaves the service healthy:
    # reads go to the primary meanwhile (dashboard.databases).
    replica: ReplicaLag | None = None

    @property
    def healthy(self) -> bool:
        return self.store.reachable and self.broker.reachable is not False

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.healthy else "unavailable", **asdict(self)}


_STORE_QUERY = """
SELECT
    (SELECT max(version) FROM schema_migrations),
    (SELECT backend FROM storage_settings),
    (SELECT count(*) FROM patients WHERE discharged_at IS NULL),
    (SELECT count(*) FILTER (WHERE online) FROM gateways),
    (SELECT count(*) FROM gateways),
    (SELECT count(*) FROM observations WHERE measured_at > now() - interval '24 hours'),
    (SELECT count(*) FROM alerts WHERE state <> 'resolved'),
    (SELECT count(*) FROM dead_letters WHERE received_at > now() - interval '24 hours')
"""


def store_status(conn: psycopg.Connection) -> StoreStatus:
    try:
        row = conn.execute(_STORE_QUERY).fetchone()
    except psycopg.Error as exc:
        return StoreStatus(reachable=False, error=type(exc).__name__)
    assert row is not None
    return StoreStatus(True, None, *row)


def broker_status(mqtt_url: str | None) -> BrokerStatus:
    if mqtt_url is None:
        return BrokerStatus(url=None, reachable=None)
    address = BrokerAddress.parse(mqtt_url)
    shown = str(replace(address, username=None, password=None))
    try:
        probe(address, timeout=1.0)
    except BrokerUnavailable as exc:
        return BrokerStatus(url=shown, reachable=False, error=str(exc.__cause__ or exc))
    return BrokerStatus(url=shown, reachable=True)


def current_status(databases: Databases, mqtt_url: str | None) -> ServiceStatus:
    try:
        with databases.primary.connection(timeout=3.0) as conn:
            store = store_status(conn)
    except Exception as exc:  # a pool timeout or a dropped server: reported, not raised
        store = StoreStatus(reachable=False, error=type(exc).__name__)
    return ServiceStatus(
        store=store, broker=broker_status(mqtt_url), replica=databases.replica_lag()
    )
