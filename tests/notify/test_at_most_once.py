"""At most once per row: with a sender killed mid-call, and with senders racing for rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from alerts.notify.sender import OUTCOME_UNKNOWN, Sender, SendReport
from alerts.notify.twilio_gateway import TwilioConfig, TwilioGateway
from telemon.config import Settings
from tests.fakes import FakeTwilio, Reply
from tests.notify.conftest import SenderFactory
from tests.notify.support import (
    CLIENT_TIMEOUT,
    PUBLIC_URL,
    SENDER_NUMBER,
    Clock,
    Cohort,
    act,
    add_nurse,
    events,
    notifications,
    open_red_episodes,
    queue_duty_phone_sms,
)

# A sender process as deployed: real clock, own connection, the real twilio client.
SENDER_PROCESS = """
import json, sys
import psycopg
from alerts.notify.sender import Sender
from alerts.notify.twilio_gateway import TwilioConfig, TwilioGateway

args = json.loads(sys.argv[1])
with psycopg.connect(args["database_url"], autocommit=True) as conn:
    gateway = TwilioGateway(TwilioConfig(args["sid"], args["token"], "+15005550006",
                                         args["base_url"], timeout=30))
    Sender(conn, gateway, public_url="https://telemon.example.it").run_once()
"""


def start_sender_process(database_url: str, fake: FakeTwilio) -> subprocess.Popen[bytes]:
    args = {
        "database_url": database_url,
        "sid": fake.account_sid,
        "token": fake.auth_token,
        "base_url": fake.base_url,
    }
    return subprocess.Popen([sys.executable, "-c", SENDER_PROCESS, json.dumps(args)])


def recover(sender: Sender, timeout: float = 5.0) -> SendReport:
    """Run a fresh sender until the dead one's session (and its lock) is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = sender.run_once()
        if report.reconciled or report.outcome_unknown or report.cancelled:
            return report
        time.sleep(0.05)
    raise AssertionError("the abandoned row was never recovered")


@pytest.mark.parametrize("accepted", [True, False], ids=["twilio-accepted", "never-arrived"])
def test_a_sender_killed_while_twilio_answers_is_never_followed_by_a_second_sms(
    accepted: bool,
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    database_url: str,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.held(threading.Event(), accept=accepted))

    process = start_sender_process(database_url, fake_twilio)
    try:
        fake_twilio.wait_for_posts(1, timeout=15)
        in_flight = notifications(db)[0]
        # Meanwhile another sender must leave the live sender's row alone.
        bystander = make_sender().run_once()
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    report = recover(make_sender())

    assert (in_flight["status"], in_flight["attempts"]) == ("sending", 1)
    assert bystander == SendReport()
    assert len(fake_twilio.message_posts) == 1
    row = notifications(db)[0]
    if accepted:
        assert report.reconciled == 1
        assert row["status"] == "sent"
        assert row["provider_id"] == fake_twilio.messages[0]["sid"]
        assert events(db, "notified")[0]["details"]["reconciled"] is True
    else:
        assert report.outcome_unknown == 1
        assert row["status"] == "failed"
        assert row["last_error"] == f"{OUTCOME_UNKNOWN}: no matching message at Twilio"
        assert events(db, "notify_failed")[0]["details"]["error"] == row["last_error"]
    assert make_sender().run_once() == SendReport()
    assert len(fake_twilio.message_posts) == 1


def kill_mid_call(database_url: str, fake: FakeTwilio) -> None:
    """A sender process dies while Twilio holds its request, which never makes a message."""
    fake.reply_with(Reply.held(threading.Event(), accept=False))
    process = start_sender_process(database_url, fake)
    try:
        fake.wait_for_posts(1, timeout=15)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize(
    ("action", "twilio_answers", "status", "cancel_reason"),
    [
        ("resolve", True, "cancelled", "episode resolved before sending"),
        # The duty phone hears of every red episode, whoever took charge of it.
        ("acknowledge", True, "failed", None),
        # Twilio could not be asked: the message may exist, so it may not be called cancelled.
        ("resolve", False, "failed", None),
    ],
    ids=["resolved", "still-needed", "twilio-refuses-to-answer"],
)
def test_an_abandoned_row_twilio_never_saw_is_cancelled_only_once_pointless(
    action: str,
    twilio_answers: bool,
    status: str,
    cancel_reason: str | None,
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    database_url: str,
    clock: Clock,
) -> None:
    red = queue_duty_phone_sms(db, cohort, settings, now=clock())
    kill_mid_call(database_url, fake_twilio)
    act(db, add_nurse(db), red.episode_id, action, clock())
    left_by_the_action = notifications(db)[0]
    token = fake_twilio.auth_token if twilio_answers else "a-revoked-token"
    gateway = TwilioGateway(
        TwilioConfig(
            fake_twilio.account_sid, token, SENDER_NUMBER, fake_twilio.base_url, CLIENT_TIMEOUT
        )
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = recover(Sender(conn, gateway, public_url=PUBLIC_URL, clock=clock))

    # Perhaps delivered, the row was not the action's to cancel.
    assert (left_by_the_action["status"], left_by_the_action["attempts"]) == ("sending", 1)
    assert [r.method for r in fake_twilio.requests] == ["POST", "GET"]
    assert fake_twilio.messages == []
    row = notifications(db)[0]
    assert (row["status"], row["cancel_reason"], row["provider_id"]) == (
        status,
        cancel_reason,
        None,
    )
    if cancel_reason is not None:
        assert report == SendReport(cancelled=1)
        assert row["last_error"] is None
        [cancelled] = events(db, "notify_cancelled")
        assert cancelled["details"]["cancel_reason"] == cancel_reason
        assert cancelled["details"]["attempt"] == 1
        assert events(db, "notify_failed") == []
    else:
        assert report == SendReport(outcome_unknown=1)
        problem = "no matching message at Twilio" if twilio_answers else "could not ask Twilio"
        assert row["last_error"].startswith(f"{OUTCOME_UNKNOWN}: {problem}")
        assert events(db, "notify_cancelled") == []
    assert make_sender().run_once() == SendReport()
    assert len(fake_twilio.message_posts) == 1


def test_two_senders_on_the_same_rows_send_each_once(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    open_red_episodes(db, cohort, settings, 10, clock())
    # Slow answers keep both senders in flight together.
    fake_twilio.reply_with(*[Reply.slow(0.02, accept=True)] * 20)
    senders = [make_sender(), make_sender()]
    start = threading.Barrier(2)
    reports: list[SendReport] = []

    def run(sender_index: int) -> None:
        start.wait()
        reports.append(senders[sender_index].run_once())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    posts = fake_twilio.message_posts
    assert len(posts) == 20
    assert len({(p.form["To"], p.form["Body"]) for p in posts}) == 20
    assert sum(r.sent for r in reports) == 20
    rows = notifications(db)
    assert {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}
    assert len({r["provider_id"] for r in rows}) == 20
    assert len(events(db, "notified")) == 20
