"""Fixtures for the journeys: a Mosquitto of the test's own, the fake Twilio server, a browser.

Each journey has its broker to itself: other engineers' test runs share the machine's broker,
and a journey that counts every message must not see theirs (nor lose its own to a shared
subscription group of theirs).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.brokers import MosquittoProcess
from tests.chromium import CHROMIUM, launched_chromium
from tests.fakes import FakeTwilio


@contextlib.contextmanager
def private_broker() -> Iterator[MosquittoProcess]:
    """A Mosquitto whose restarts keep its sessions, as a deployment's does."""
    with tempfile.TemporaryDirectory(prefix="telemon-journey-mosquitto-") as workdir:
        broker = MosquittoProcess(Path(workdir))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


@pytest.fixture
def broker() -> Iterator[MosquittoProcess]:
    with private_broker() as broker:
        yield broker


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio.running() as fake:
        yield fake


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install chromium (scripts/test does)")
    with launched_chromium() as browser:
        yield browser
