"""Twilio's delivery reports: signed, applied in order, never moving a row backwards."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from twilio.request_validator import RequestValidator

from alerts.notify import (
    StatusReport,
    apply_status_callback,
    is_valid_signature,
    status_callback_url,
)
from alerts.notify.callbacks import next_status
from telemon.config import Settings
from tests.fakes import FakeTwilio, Reply
from tests.notify.conftest import SenderFactory
from tests.notify.support import (
    PUBLIC_URL,
    Clock,
    Cohort,
    act,
    add_nurse,
    events,
    notifications,
    open_red_episodes,
    queue_duty_phone_sms,
)
from tests.waiting import wait_until


@pytest.fixture
def sent_row(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> dict:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    make_sender().run_once()
    return notifications(db)[0]


def report(sid: str, status: str, **form: str) -> StatusReport:
    return StatusReport.from_request({"MessageSid": sid, "MessageStatus": status, **form})


def test_delivery_reports_move_the_row_forward_only(db: psycopg.Connection, sent_row: dict) -> None:
    sid = sent_row["provider_id"]

    outcomes = [
        apply_status_callback(db, report(sid, "sent")),
        apply_status_callback(db, report(sid, "delivered")),
        apply_status_callback(db, report(sid, "sent")),
        apply_status_callback(db, report(sid, "undelivered", ErrorCode="30003")),
    ]

    assert outcomes == ["unchanged", "updated", "unchanged", "unchanged"]
    row = notifications(db)[0]
    assert (row["status"], row["last_error"]) == ("delivered", None)
    (delivered,) = events(db, "notify_delivered")
    assert delivered["episode_id"] == row["episode_id"] is not None
    assert delivered["details"]["notification_id"] == row["id"]
    assert delivered["details"]["recipient_kind"] == "service_centre"


def test_an_undelivered_report_is_an_error_the_dashboard_sees(
    db: psycopg.Connection, sent_row: dict
) -> None:
    sid = sent_row["provider_id"]

    outcome = apply_status_callback(db, report(sid, "undelivered", ErrorCode="30003"))

    assert outcome == "updated"
    row = notifications(db)[0]
    assert row["status"] == "undelivered"
    assert row["last_error"] == "Twilio reported undelivered (error 30003)"
    assert events(db, "notify_failed")[0]["details"]["error"] == row["last_error"]


def test_a_report_about_an_unknown_message_changes_nothing(
    db: psycopg.Connection, sent_row: dict
) -> None:
    outcome = apply_status_callback(db, report("SM" + "f" * 32, "delivered"))

    assert outcome == "unknown"
    assert notifications(db)[0]["status"] == "sent"


def test_a_report_settles_a_row_whose_outcome_was_unknown(
    db: psycopg.Connection, sent_row: dict
) -> None:
    # As a sender killed mid-call leaves it when Twilio's listing did not show the message yet.
    db.execute(
        "UPDATE notifications SET status = 'failed', provider_id = NULL, "
        "last_error = 'outcome unknown after restart: no matching message at Twilio'"
    )
    late = StatusReport.from_request(
        {"MessageSid": sent_row["provider_id"], "MessageStatus": "delivered"},
        {"notification": str(sent_row["id"])},
    )

    assert apply_status_callback(db, late) == "updated"
    row = notifications(db)[0]
    assert (row["status"], row["provider_id"], row["last_error"]) == (
        "delivered",
        sent_row["provider_id"],
        None,
    )


def test_a_report_overrules_a_cancellation_decided_on_an_early_look_up(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.slow(1.0, accept=False))
    sender = make_sender()
    sender.run_once()  # times out
    act(db, add_nurse(db), red.episode_id, "resolve", clock())
    clock.advance(timedelta(minutes=1))
    sender.run_once()  # Twilio lists no such message: cancelled rather than sent again
    cancelled = notifications(db)[0]
    # The residual risk of every Twilio client: the first request accepted after all, late.
    late = StatusReport.from_request(
        {"MessageSid": "SM" + "5" * 32, "MessageStatus": "delivered"},
        {"notification": str(cancelled["id"])},
    )

    outcome = apply_status_callback(db, late)

    assert (cancelled["status"], cancelled["cancel_reason"]) == (
        "cancelled",
        "episode resolved before sending",
    )
    assert outcome == "updated"
    row = notifications(db)[0]
    assert (row["status"], row["provider_id"], row["cancel_reason"]) == (
        "delivered",
        "SM" + "5" * 32,
        None,
    )
    assert len(fake_twilio.message_posts) == 1


def test_a_report_arriving_before_the_sender_stored_the_sid(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    release = threading.Event()
    fake_twilio.reply_with(Reply.held(release, accept=True))
    sender = make_sender()
    sending = threading.Thread(target=sender.run_once)
    sending.start()
    fake_twilio.wait_for_posts(1)
    # The fake records the request a moment before it makes the message.
    wait_until(lambda: bool(fake_twilio.messages), timeout=5)
    notification_id = notifications(db)[0]["id"]
    early = StatusReport.from_request(
        {"MessageSid": fake_twilio.messages[0]["sid"], "MessageStatus": "delivered"},
        {"notification": str(notification_id)},
    )

    outcome = apply_status_callback(db, early)
    release.set()
    sending.join(5)

    assert outcome == "updated"
    row = notifications(db)[0]
    assert (row["status"], row["provider_id"]) == ("delivered", fake_twilio.messages[0]["sid"])
    assert len(fake_twilio.message_posts) == 1


def test_a_failed_sms_stays_failed_whatever_reports_come_later(
    db: psycopg.Connection, sent_row: dict
) -> None:
    # The forgery, replayed with the row's real SID: a failed red-alert SMS must not
    # turn 'delivered' and drop off the nurses' failed-SMS worklist.
    sid = sent_row["provider_id"]
    reported = StatusReport.from_request(
        {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30006"},
        {"notification": str(sent_row["id"])},
    )
    assert apply_status_callback(db, reported) == "updated"

    late = [
        apply_status_callback(
            db,
            StatusReport.from_request(
                {"MessageSid": sid, "MessageStatus": status}, {"notification": str(sent_row["id"])}
            ),
        )
        for status in ("delivered", "undelivered", "sent", "read")
    ]

    assert late == ["unchanged"] * 4
    row = notifications(db)[0]
    assert (row["status"], row["last_error"]) == ("failed", "Twilio reported failed (error 30006)")
    assert events(db, "notify_delivered") == []


def test_a_report_about_another_message_than_the_rows_is_refused(
    db: psycopg.Connection, sent_row: dict
) -> None:
    forged = StatusReport.from_request(
        {"MessageSid": "SMforged000", "MessageStatus": "delivered"},
        {"notification": str(sent_row["id"])},
    )

    assert apply_status_callback(db, forged) == "mismatched"
    row = notifications(db)[0]
    assert (row["status"], row["provider_id"]) == ("sent", sent_row["provider_id"])
    assert events(db, "notify_delivered") == []


def test_a_row_without_a_sid_cannot_take_another_rows_message(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    open_red_episodes(db, cohort, settings, 1, now=clock())
    make_sender().run_once()
    delivered_to, unknown = notifications(db)
    db.execute(
        "UPDATE notifications SET status = 'failed', provider_id = NULL, "
        "last_error = 'outcome unknown after restart: no matching message at Twilio' "
        "WHERE id = %s",
        (unknown["id"],),
    )
    # The first row's report, sent to the second row's callback URL.
    moved = StatusReport.from_request(
        {"MessageSid": delivered_to["provider_id"], "MessageStatus": "delivered"},
        {"notification": str(unknown["id"])},
    )

    outcome = apply_status_callback(db, moved)

    assert outcome == "mismatched"
    first, second = notifications(db)
    assert (first["status"], first["provider_id"]) == ("sent", delivered_to["provider_id"])
    assert (second["status"], second["provider_id"]) == ("failed", None)


@pytest.mark.parametrize(
    ("current", "reported", "adopting", "expected"),
    [
        ("sending", "queued", False, "sent"),
        ("sent", "delivered", False, "delivered"),
        ("sent", "failed", False, "failed"),
        # Delivered, undelivered and failed are final: no report turns one into another.
        ("undelivered", "delivered", False, None),
        ("failed", "delivered", False, None),
        ("delivered", "failed", False, None),
        ("delivered", "undelivered", False, None),
        ("delivered", "delivered", False, None),
        ("failed", "sent", False, None),
        ("failed", "sent", True, "sent"),
        ("delivered", "sent", True, None),
        ("cancelled", "delivered", True, "delivered"),
        ("sent", "receiving", False, None),
    ],
)
def test_next_status(current: str, reported: str, adopting: bool, expected: str | None) -> None:
    assert next_status(current, reported, adopting=adopting) == expected


def test_signatures_are_checked_with_the_auth_token() -> None:
    token = "12345678901234567890123456789012"
    url = status_callback_url(PUBLIC_URL, 17)
    assert url == f"{PUBLIC_URL}/sms/status?notification=17"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "AccountSid": "AC1"}
    # What Twilio puts in X-Twilio-Signature, computed the way Twilio documents it.
    signature = RequestValidator(token).compute_signature(url, params)

    assert is_valid_signature(token, url, params, signature)
    assert not is_valid_signature(token, url, params | {"MessageStatus": "failed"}, signature)
    assert not is_valid_signature("0" * 32, url, params, signature)
    assert not is_valid_signature(token, url.replace("17", "18"), params, signature)
    assert not is_valid_signature(token, url, params, None)


def test_sha256_signatures_named_in_the_signature_settings_header() -> None:
    token = "12345678901234567890123456789012"
    url = f"{PUBLIC_URL}/sms/status?notification=17"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent"}
    signature = RequestValidator(token).compute_signature(url, params, "HMAC_SHA256")
    settings_header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"

    assert is_valid_signature(token, url, params, signature, settings_header)
    assert not is_valid_signature(token, url, params, signature)


def test_no_status_callback_for_a_dashboard_twilio_cannot_reach() -> None:
    assert status_callback_url("http://127.0.0.1:8000", 17) is None
