"""Fixtures for the SMS path: a cohort, a clock, senders on connections of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from alerts.notify.sender import RetryPolicy, Sender
from telemon.config import Settings
from tests.fakes import FakeTwilio, fake_twilio  # noqa: F401
from tests.notify.support import (
    PUBLIC_URL,
    SENDER_NUMBER,
    TEST_POLICY,
    Clock,
    Cohort,
    add_cohort,
    gateway_for,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cohort(db: psycopg.Connection) -> Cohort:
    return add_cohort(db)


@pytest.fixture
def settings(fake_twilio: FakeTwilio) -> Settings:  # noqa: F811
    return Settings(
        public_url=PUBLIC_URL,
        language="it",
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_from=SENDER_NUMBER,
        twilio_base_url=fake_twilio.base_url,
        service_centre_phone=None,
    )


SenderFactory = Callable[..., Sender]


@pytest.fixture
def make_sender(
    database_url: str,
    fake_twilio: FakeTwilio,  # noqa: F811
    clock: Clock,
) -> Iterator[SenderFactory]:
    """Senders as separate processes would have them: each on a connection of its own."""
    connections: list[psycopg.Connection] = []

    def make(
        *,
        outbox: bool = False,
        policy: RetryPolicy = TEST_POLICY,
    ) -> Sender:
        conn = psycopg.connect(database_url, autocommit=True)
        connections.append(conn)
        gateway = None if outbox else gateway_for(fake_twilio)
        return Sender(conn, gateway, public_url=PUBLIC_URL, policy=policy, clock=clock)

    yield make
    for conn in connections:
        conn.close()
