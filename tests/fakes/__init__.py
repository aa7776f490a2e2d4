"""Fakes of the paid services telemon talks to, with their pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.twilio_server import FakeTwilio, RecordedRequest, Reply

__all__ = ["FakeTwilio", "RecordedRequest", "Reply", "fake_twilio"]


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio REST server of the test's own, on a free local port."""
    with FakeTwilio.running() as fake:
        yield fake
