"""Fixtures for the alerts engine: a cohort in the real database, engines, a clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from alerts.engine import Engine, ManualClock
from telemon.config import Settings
from tests.alerts_engine.support import MORNING, PROTOCOLS, SENDER_NUMBER, Cohort, add_cohort
from tests.fakes import FakeTwilio, fake_twilio  # noqa: F401


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MORNING)


@pytest.fixture
def settings(fake_twilio: FakeTwilio, database_url: str) -> Settings:  # noqa: F811
    return Settings(
        database_url=database_url,
        public_url="https://telemon.example.it",
        language="it",
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_from=SENDER_NUMBER,
        twilio_base_url=fake_twilio.base_url,
    )


@pytest.fixture
def cohort(db: psycopg.Connection) -> Cohort:
    return add_cohort(db)


@pytest.fixture
def make_engine(database_url: str, settings: Settings) -> Iterator[Callable[[], Engine]]:
    """Engines as separate processes would have them: each on a connection of its own."""
    connections: list[psycopg.Connection] = []

    def make() -> Engine:
        conn = psycopg.connect(database_url, autocommit=True)
        connections.append(conn)
        return Engine(conn, settings, PROTOCOLS)

    yield make
    for conn in connections:
        conn.close()
