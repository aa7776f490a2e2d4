"""``/healthz`` tells anyone only that the dashboard is alive; ``/status`` is for operators.

Issue 15: both told anyone the patient count, the open alerts, the readings of the day and the
broker URL, which in compose carries the MQTT user name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.routes.status import bearer_matches
from telemon.mqtt import BrokerAddress
from tests.dashboard.conftest import World
from tests.dashboard.support import login

STATUS_TOKEN = "status-probe-token-0123456789"
BROKER_USER, BROKER_PASSWORD = "server", "s3cret-broker-pw"


@pytest.fixture
def status_client(database_url: str, mqtt_url: str) -> Iterator[TestClient]:
    broker = BrokerAddress.parse(mqtt_url)
    app = create_app(
        database_url,
        mqtt_url=f"mqtt://{BROKER_USER}:{BROKER_PASSWORD}@{broker.host}:{broker.port}",
        public_url="http://testserver",
        language="en",
        twilio_auth_token="",
        status_token=STATUS_TOKEN,
    )
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_healthz_says_only_that_the_dashboard_is_alive(
    status_client: TestClient, world: World
) -> None:
    response = status_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_status_is_refused_without_an_admin_session_or_the_token(
    status_client: TestClient, world: World
) -> None:
    answers = {
        "anonymous, JSON": status_client.get("/status", headers={"accept": "application/json"}),
        "anonymous, browser": status_client.get("/status"),
        "wrong token": status_client.get("/status", headers={"authorization": "Bearer nope"}),
        "token as basic auth": status_client.get(
            "/status", headers={"authorization": f"Basic {STATUS_TOKEN}"}
        ),
    }
    for username in ("nurse.greco", "dr.rossi"):
        login(status_client, username)
        answers[username] = status_client.get("/status")
        status_client.cookies.clear()

    assert {name: r.status_code for name, r in answers.items()} == {
        "anonymous, JSON": 401,
        "anonymous, browser": 303,
        "wrong token": 401,
        "token as basic auth": 401,
        "nurse.greco": 403,
        "dr.rossi": 403,
    }
    assert answers["anonymous, browser"].headers["location"] == "/login"
    for response in answers.values():
        assert '"patients"' not in response.text and "Patients enrolled" not in response.text
        assert f"{BROKER_USER}@" not in response.text


def test_a_probe_with_the_token_reads_the_status_as_json(
    status_client: TestClient, world: World
) -> None:
    response = status_client.get("/status", headers={"authorization": f"Bearer {STATUS_TOKEN}"})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["store"]["patients"] == len(world.patients)
    assert body["broker"]["reachable"] is True
    assert BROKER_USER not in response.text and BROKER_PASSWORD not in response.text


def test_an_admin_reads_the_status_page_in_their_language(
    status_client: TestClient, world: World
) -> None:
    login(status_client, "admin")

    page = status_client.get("/status")
    as_json = status_client.get("/status", headers={"accept": "application/json"})

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Patients enrolled" in page.text and 'href="/status"' in page.text  # in the nav
    assert as_json.json()["store"]["patients"] == len(world.patients)
    for response in (page, as_json):
        # The broker by host and port only: compose's URL carries the MQTT user and password.
        assert BROKER_USER not in response.text and BROKER_PASSWORD not in response.text


def test_without_a_configured_token_no_bearer_is_taken(database_url: str, world: World) -> None:
    app = create_app(
        database_url, public_url="http://testserver", language="en", twilio_auth_token=""
    )
    with TestClient(app) as client:
        empty = client.get("/status", headers={"authorization": "Bearer "})
        anything = client.get("/status", headers={"authorization": "Bearer x"})

    assert (empty.status_code, anything.status_code) == (401, 401)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {STATUS_TOKEN}", True),
        (f"bearer  {STATUS_TOKEN} ", True),
        (f"Bearer {STATUS_TOKEN}x", False),
        (f"Bearer {STATUS_TOKEN[:-1]}", False),
        ("Bearer é", False),  # not ASCII: compared as bytes, not a TypeError
        (STATUS_TOKEN, False),
    ],
)
def test_bearer_matches(header: str, expected: bool) -> None:
    assert bearer_matches(header, STATUS_TOKEN) is expected
