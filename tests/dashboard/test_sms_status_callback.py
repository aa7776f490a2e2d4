"""Twilio's delivery reports at ``POST /sms/status``: only signed ones, only forward (issue 15).

Reports are signed here as Twilio signs them, with the real ``twilio`` RequestValidator over
the public URL and the form, and posted to the real app over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from dashboard.app import create_app
from tests.dashboard.conftest import World

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC_URL = "https://telemon.example.it"


@pytest.fixture
def twilio_client(database_url: str) -> Iterator[TestClient]:
    app = create_app(database_url, public_url=PUBLIC_URL, language="en", twilio_auth_token=TOKEN)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def post_report(
    client: TestClient,
    form: dict[str, str],
    *,
    notification: int | None = None,
    signed_with: str | None = TOKEN,
    signed_url: str | None = None,
):
    path = "/sms/status" + (f"?notification={notification}" if notification else "")
    headers = {}
    if signed_with is not None:
        url = signed_url or PUBLIC_URL + path
        headers["x-twilio-signature"] = RequestValidator(signed_with).compute_signature(url, form)
    return client.post(path, data=form, headers=headers)


def failed_row(db: psycopg.Connection, world: World) -> int:
    """The red-alert SMS Twilio refused (the world's one 'failed' row)."""
    return db.execute(
        "SELECT id FROM notifications WHERE episode_id = %s AND status = 'failed'",
        (world.episodes["own"],),
    ).fetchone()[0]


def state(db: psycopg.Connection) -> tuple:
    return (
        db.execute(
            "SELECT id, status, provider_id, last_error FROM notifications ORDER BY id"
        ).fetchall(),
        db.execute("SELECT count(*) FROM episode_events WHERE kind LIKE 'notif%%'").fetchone()[0],
    )


def test_forged_reports_are_refused_as_if_the_route_did_not_exist(
    client: TestClient, twilio_client: TestClient, world: World, db: psycopg.Connection
) -> None:
    # The attack: no cookie, no signature, and a failed red-alert SMS became
    # 'delivered', dropping off the nurses' failed-SMS worklist.
    row = failed_row(db, world)
    forged = {"MessageSid": "SMforged000", "MessageStatus": "delivered"}
    before = state(db)

    answers = {
        "no token configured": post_report(client, forged, notification=row, signed_with=None),
        "no token configured, signed anyway": post_report(client, forged, notification=row),
        "unsigned": post_report(twilio_client, forged, notification=row, signed_with=None),
        "signed with another token": post_report(
            twilio_client, forged, notification=row, signed_with="f" * 32
        ),
        "signed for another row": post_report(
            twilio_client,
            forged,
            notification=row,
            signed_url=f"{PUBLIC_URL}/sms/status?notification={row + 1}",
        ),
        "signed over the internal URL": post_report(
            twilio_client,
            forged,
            notification=row,
            signed_url=f"http://testserver/sms/status?notification={row}",
        ),
    }

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 404)
    assert state(db) == before
    worklist = db.execute("SELECT id FROM notifications WHERE status = 'failed'").fetchall()
    assert worklist == [(row,)]


def test_signed_reports_move_a_row_forward_only(
    twilio_client: TestClient, world: World, db: psycopg.Connection
) -> None:
    row = failed_row(db, world)
    db.execute(
        "UPDATE notifications SET status = 'sent', provider_id = 'SM1', last_error = NULL "
        "WHERE id = %s",
        (row,),
    )

    answers = [
        post_report(twilio_client, {"MessageSid": "SM1", "MessageStatus": status}, notification=row)
        for status in ("delivered", "failed", "sent")
    ]

    assert [r.status_code for r in answers] == [204, 204, 204]
    status = db.execute("SELECT status FROM notifications WHERE id = %s", (row,)).fetchone()[0]
    assert status == "delivered"


def test_a_signed_report_about_another_message_than_the_rows_is_refused(
    twilio_client: TestClient, world: World, db: psycopg.Connection
) -> None:
    row = failed_row(db, world)
    db.execute("UPDATE notifications SET provider_id = 'SM1' WHERE id = %s", (row,))
    before = state(db)

    mismatched = post_report(
        twilio_client, {"MessageSid": "SM2", "MessageStatus": "delivered"}, notification=row
    )
    unknown = post_report(
        twilio_client, {"MessageSid": "SM3", "MessageStatus": "delivered"}, notification=10**9
    )

    assert (mismatched.status_code, unknown.status_code) == (409, 404)
    assert state(db) == before


@pytest.mark.parametrize(
    "form",
    [
        {"MessageSid": "SM\x00", "MessageStatus": "sent"},
        {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "³"},
        {"MessageSid": "SM1"},
    ],
    ids=["NUL", "superscript error code", "no status"],
)
def test_a_signed_report_that_makes_no_sense_is_refused(
    twilio_client: TestClient, world: World, db: psycopg.Connection, form: dict[str, str]
) -> None:
    row = failed_row(db, world)
    db.execute(
        "UPDATE notifications SET status = 'sent', provider_id = 'SM1' WHERE id = %s", (row,)
    )
    before = state(db)

    response = post_report(twilio_client, form, notification=row)

    assert response.status_code == 400
    assert state(db) == before
