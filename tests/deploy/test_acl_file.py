"""deploy/mosquitto/acl is the rendering of telemon/acl.py's table, and the table means what
Mosquitto makes of the file (tests/deploy/test_mosquitto_acl.py runs the file on Mosquitto,
tests/test_embedded_broker.py runs the table on the demo's broker)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemon.acl import SERVICE_USERS, Access, allowed, gateway_id_problem, render_mosquitto_acl

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def test_shipped_acl_file_is_the_rendering_of_the_table() -> None:
    assert (MOSQUITTO_DIR / "acl").read_text() == render_mosquitto_acl(), (
        "deploy/mosquitto/acl differs from telemon/acl.py: "
        "run `python -m telemon.acl > deploy/mosquitto/acl`"
    )


def test_make_passwd_knows_the_same_server_users() -> None:
    script = (MOSQUITTO_DIR / "make-passwd.sh").read_text()
    created = re.search(r"for user in ([\w ]+); do", script)
    assert created and tuple(created.group(1).split()) == SERVICE_USERS
    refused = re.findall(r"\$1 != (\w+)", script)
    assert tuple(refused) == SERVICE_USERS


@pytest.mark.parametrize(
    ("username", "access", "topic", "expected"),
    [
        # A gateway: its own uplink topics, its own config, nothing else.
        ("gw-0001", Access.WRITE, "telemon/v1/gw/gw-0001/obs", True),
        ("gw-0001", Access.WRITE, "telemon/v1/gw/gw-0001/status", True),
        ("gw-0001", Access.WRITE, "telemon/v1/gw/gw-0001/devices", True),
        ("gw-0001", Access.READ, "telemon/v1/gw/gw-0001/config", True),
        ("gw-0001", Access.WRITE, "telemon/v1/gw/gw-0002/obs", False),
        ("gw-0001", Access.WRITE, "telemon/v1/gw/gw-0001/config", False),
        ("gw-0001", Access.READ, "telemon/v1/gw/gw-0001/obs", False),
        ("gw-0001", Access.READ, "telemon/v1/gw/gw-0002/config", False),
        ("gw-0001", Access.READ, "telemon/v1/gw/+/config", False),
        ("gw-0001", Access.READ, "telemon/v1/gw/gw-0001/#", False),
        ("gw-0001", Access.READ, "#", False),
        # ingest reads every gateway's uplink, also through its shared group; writes nothing.
        ("ingest", Access.READ, "telemon/v1/gw/+/obs", True),
        ("ingest", Access.READ, "$share/ingest/telemon/v1/gw/+/status", True),
        ("ingest", Access.READ, "telemon/v1/gw/gw-0002/devices", True),
        ("ingest", Access.READ, "telemon/v1/gw/+/+", False),
        ("ingest", Access.READ, "telemon/v1/gw/+/config", False),
        ("ingest", Access.WRITE, "telemon/v1/gw/gw-0001/obs", False),
        # Pattern lines apply to every user, as in Mosquitto: ingest may publish as a gateway
        # called "ingest", a name no gateway may have (gateway_id_problem), so that grants nothing.
        ("ingest", Access.WRITE, "telemon/v1/gw/ingest/obs", True),
        ("ingest", Access.WRITE, "telemon/v1/gw/gw-0001/config", False),
        # server publishes configs.
        ("server", Access.WRITE, "telemon/v1/gw/gw-0001/config", True),
        ("server", Access.READ, "telemon/v1/gw/gw-0001/config", False),
        # A name that is no gateway id gets no pattern rights; an anonymous client nothing.
        ("gw/+", Access.WRITE, "telemon/v1/gw/gw/+/obs", False),
        (None, Access.READ, "telemon/v1/gw/gw-0001/config", False),
    ],
)
def test_the_table_grants_what_mosquitto_would(
    username: str | None, access: Access, topic: str, expected: bool
) -> None:
    assert allowed(username, access, topic) is expected


@pytest.mark.parametrize(
    ("gateway_id", "problem"),
    [
        ("gw-0001", None),
        ("ingest", "server user"),
        ("server", "server user"),
        ("gw:1", "invalid"),
        ("gw/1", "invalid"),
        ("gw-1\n", "invalid"),
    ],
)
def test_gateway_ids_that_would_share_rights_are_refused(
    gateway_id: str, problem: str | None
) -> None:
    found = gateway_id_problem(gateway_id)
    assert (found is None) if problem is None else (problem in found)
