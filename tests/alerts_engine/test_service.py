"""The service: NOTIFY-driven evaluation, SMS through the fake Twilio, health, the command."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from alerts.engine import AlertsService, ManualClock
from alerts.engine.health import database_check
from telemon.config import Settings
from telemon.ops_http import OpsServer
from tests.alerts_engine.support import (
    DUTY_PHONE,
    GP_PHONE,
    Cohort,
    add_readings,
    alerts,
    notifications,
)
from tests.fakes import FakeTwilio
from tests.http import http_status
from tests.waiting import wait_until


@pytest.fixture
def service(settings: Settings, clock: ManualClock) -> Iterator[AlertsService]:
    service = AlertsService(
        settings, clock=clock, tick=3600, coalesce=0.05, send_interval=0.1, health_port=0
    )
    service.start()
    assert service.wait_listening()
    wait_until(lambda: service.passes >= 1)  # the full pass at start
    yield service
    service.stop()


def test_notified_readings_open_an_alert_and_each_recipient_gets_one_sms(
    db: psycopg.Connection,
    cohort: Cohort,
    service: AlertsService,
    clock: ManualClock,
    fake_twilio: FakeTwilio,
) -> None:
    for minutes, value in ((20, 91), (10, 90)):
        passes = service.passes
        add_readings(
            db, cohort.patient, "spo2", [(clock() - timedelta(minutes=minutes), value)], notify=True
        )
        wait_until(lambda passes=passes: service.passes > passes)
        clock.advance(timedelta(minutes=1))
    [alert] = wait_until(lambda: alerts(db, rule="spo2_low"))
    assert alert["severity"] == 2

    fake_twilio.wait_for_posts(2)
    wait_until(lambda: all(n["status"] == "sent" for n in notifications(db)))
    # More notifications and passes change nothing: each recipient was texted exactly once.
    add_readings(db, cohort.patient, "spo2", [(clock() - timedelta(seconds=30), 90)], notify=True)
    service.request_full_pass()
    time.sleep(0.5)
    recipients = sorted(post.form["To"] for post in fake_twilio.message_posts)
    assert recipients == sorted([GP_PHONE, DUTY_PHONE])
    assert len(alerts(db, rule="spo2_low")) == 1

    assert http_status(f"http://127.0.0.1:{service.health_port}/healthz") == 200


def test_health_is_503_when_the_database_is_unreachable() -> None:
    server = OpsServer(
        "127.0.0.1", 0, health=database_check("postgresql://nobody@127.0.0.1:1/none", timeout=1)
    )
    server.start()
    try:
        assert http_status(f"http://127.0.0.1:{server.port}/healthz") == 503
        assert http_status(f"http://127.0.0.1:{server.port}/other") == 404
    finally:
        server.stop()


def cli_app():
    from console.cli import app

    return app


def test_command_explains_a_missing_or_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("TELEMON_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli_app(), ["alerts"])
    assert result.exit_code == 2
    assert "TELEMON_DATABASE_URL is not set" in result.output

    monkeypatch.setenv("TELEMON_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(cli_app(), ["alerts"])
    assert result.exit_code == 2
    assert "cannot reach PostgreSQL" in result.output


def test_command_once_evaluates_everyone(
    db: psycopg.Connection, cohort: Cohort, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMON_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli_app(), ["alerts", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 patients" in result.output
    # Never measured: the not-measuring task is open, for the service centre.
    assert [a["rule"] for a in alerts(db)] == ["spo2_not_measuring"]
