"""Every compose service gets the secrets its code reads (issue 15).

The dashboard verifies Twilio's signature on delivery reports, but compose gave the Twilio auth
token to the alerts service only: in production the dashboard then accepted unsigned reports.
Which service needs which secret is derived from the code each one runs (its ``telemon
<command>`` function and its package): any read of a ``SecretStr`` setting's attribute counts.
The table below says why, and must agree with what the code reads.
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from telemon.config import Settings

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
SERVICES = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]

# The code behind each telemon service of compose.yaml, beside its command's function in
# console/cli.py.
SERVICE_CODE: dict[str, tuple[str, ...]] = {
    "migrate": ("telemon/store/migrate.py", "telemon/store/migrations"),
    "ingest": ("ingest",),
    "alerts": ("alerts",),
    "dashboard": ("dashboard",),
    "sim": ("firmware_sim", "console/fleet.py", "console/demo.py", "console/cohort.py"),
}

# Setting -> the services that need it, and why.
NEEDS: dict[str, dict[str, str]] = {
    "TELEMON_TWILIO_AUTH_TOKEN": {
        "alerts": "sends SMS through Twilio's REST API",
        "dashboard": "checks the signature of Twilio's delivery reports (POST /sms/status)",
    },
    "TELEMON_STATUS_TOKEN": {
        "dashboard": "lets a monitoring probe read GET /status without a staff session",
    },
    # Read by no code today; compose passes it to alerts and the dashboard all the same.
    "TELEMON_SECRET_KEY": {},
}


def secret_settings() -> dict[str, str]:
    """Environment variable -> Settings attribute, for every SecretStr setting."""
    return {
        f"TELEMON_{name.upper()}": name
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
    }


def _sources(service: str) -> Iterator[ast.AST]:
    cli = ast.parse((REPO / "console" / "cli.py").read_text())
    yield from (
        node
        for node in cli.body
        if isinstance(node, ast.FunctionDef) and node.name == SERVICES[service]["command"][0]
    )
    for entry in SERVICE_CODE[service]:
        path = REPO / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if file.suffix == ".py":
                yield ast.parse(file.read_text())


def attributes_read(service: str) -> set[str]:
    return {
        node.attr
        for tree in _sources(service)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
    }


def test_every_telemon_service_is_mapped_to_its_code() -> None:
    telemon_services = {name for name, s in SERVICES.items() if "build" in s}
    assert set(SERVICE_CODE) == telemon_services
    for entries in SERVICE_CODE.values():
        assert all((REPO / entry).exists() for entry in entries), entries


def test_the_table_of_needs_is_what_the_code_reads() -> None:
    secrets = secret_settings()
    assert set(NEEDS) == set(secrets), "add the new secret setting to NEEDS"
    derived = {
        variable: {name for name in SERVICE_CODE if attribute in attributes_read(name)}
        for variable, attribute in secrets.items()
    }
    assert {variable: set(services) for variable, services in NEEDS.items()} == derived


@pytest.mark.parametrize(
    ("variable", "service"),
    [(variable, service) for variable, services in NEEDS.items() for service in services],
)
def test_each_service_that_needs_a_secret_gets_it(variable: str, service: str) -> None:
    assert gets(SERVICES[service], variable), (
        f"{service} {NEEDS[variable][service]}: give it {variable} or {variable}_FILE"
    )


def gets(service: dict, variable: str) -> bool:
    """The variable itself, or its ``_FILE`` form naming a Docker secret the service is granted."""
    environment = service.get("environment", {})
    granted = {f"/run/secrets/{name}" for name in service.get("secrets", [])}
    return variable in environment or environment.get(f"{variable}_FILE") in granted


def test_secrets_go_to_no_service_that_does_not_need_them() -> None:
    # The SMS credentials stay with the services that talk to Twilio.
    for variable in ("TELEMON_TWILIO_AUTH_TOKEN", "TELEMON_STATUS_TOKEN"):
        given = {name for name, s in SERVICES.items() if gets(s, variable)}
        assert given == set(NEEDS[variable]), variable


def test_the_signing_key_is_a_docker_secret_of_the_services_that_sign() -> None:
    given = {name for name, s in SERVICES.items() if gets(s, "TELEMON_SECRET_KEY")}
    assert given == {"alerts", "dashboard"}
    for name in given:
        assert "TELEMON_SECRET_KEY" not in SERVICES[name]["environment"], "not in the environment"
