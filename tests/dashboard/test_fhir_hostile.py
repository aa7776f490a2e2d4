"""FHIR search against hostile input (issue 15): far dates, and a forged Host header."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given
from hypothesis import strategies as st

from dashboard.app import create_app
from dashboard.fhir import EARLIEST, LATEST, SearchError, parse_search
from tests.dashboard.conftest import World
from tests.dashboard.support import login

PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
PUBLIC_URL = "https://telemon.example.it"


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31",  # the issue's: a day after it overflowed
        "le9999-12-31",
        "sa9999-12-31",
        "eb9999",
        "gt9999-12",
        "ge9999-12-31T23:59:59.999999Z",
        "eq0001-01-01",
        "ge0001-01-01T00:00:00+14:00",
        "lt1899-12-31",
        "le2200-01-01",
        "2199-12-31T23:00:00-05:00",  # in range as written, past it in UTC
        "ge٢٠٢٤-٠١-٠١",  # Arabic-Indic digits
    ],
)
def test_far_dates_are_refused_with_an_operation_outcome(
    client: TestClient, world: World, value: str
) -> None:
    login(client, "dr.rossi")

    response = client.get(
        "/fhir/Observation", params={"patient": world.patients["own"], "date": value}
    )

    assert response.status_code == 400, response.text
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].code == "invalid"
    assert "1900 to 2199" in outcome.issue[0].diagnostics


def test_the_whole_range_is_searchable(client: TestClient, world: World) -> None:
    login(client, "dr.rossi")
    pid = world.patients["own"]

    everything = client.get(f"/fhir/Observation?patient={pid}").json()["total"]
    bounded = client.get(
        f"/fhir/Observation?patient={pid}&date=ge1900-01-01&date=le2199-12-31"
    ).json()["total"]

    assert bounded == everything > 0


@st.composite
def date_values(draw: st.DrawFn) -> str:
    """FHIR date search values: a prefix, then a year, month, day or instant, any year."""
    day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    form = draw(st.sampled_from(["year", "month", "day", "instant"]))
    if form == "instant":
        offset = draw(st.integers(min_value=-14 * 60, max_value=14 * 60))
        at = datetime.combine(day, datetime.min.time()) + timedelta(
            microseconds=draw(st.integers(min_value=0, max_value=86_400_000_000 - 1))
        )
        text = at.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat()
    else:
        text = day.isoformat()[: {"year": 4, "month": 7, "day": 10}[form]]
    return draw(st.sampled_from(PREFIXES)) + text


@given(st.lists(date_values(), min_size=1, max_size=3))
def test_any_date_is_searched_within_the_bounds_or_refused(values: list[str]) -> None:
    try:
        query = parse_search("1", [], values, None)
    except SearchError:
        return
    for bound in (query.start, query.end):
        assert bound is None or EARLIEST <= bound <= LATEST


@pytest.fixture
def public_client(database_url: str) -> Iterator[TestClient]:
    app = create_app(database_url, public_url=PUBLIC_URL, language="en", twilio_auth_token="")
    # https, as the site is: its session cookie is Secure.
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_bundle_links_come_from_the_public_url_not_the_host_header(
    public_client: TestClient, world: World
) -> None:
    login(public_client, "dr.rossi")
    pid = world.patients["own"]

    response = public_client.get(
        f"/fhir/Observation?patient={pid}&code=59408-5", headers={"host": "evil.example"}
    )

    assert response.status_code == 200
    bundle = Bundle.model_validate(response.json())
    assert bundle.entry
    assert bundle.link[0].url == f"{PUBLIC_URL}/fhir/Observation?patient={pid}&code=59408-5"
    for entry in bundle.entry:
        assert entry.fullUrl == f"{PUBLIC_URL}/fhir/Observation/{entry.resource.id}"
    assert "evil.example" not in response.text
