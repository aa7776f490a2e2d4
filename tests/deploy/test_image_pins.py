"""Every image the server runs or builds from is pinned to the exact version it was tested with.

A floating tag (``latest``, ``latest-pg16``, a bare major such as ``eclipse-mosquitto:2``) changes
what runs on the next pull: TimescaleDB changed behaviour the SQL relies on across 2.11, 2.13,
2.16 and 2.27, and a restore needs the very extension version the dump was taken with.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
MAKE_PASSWD = (REPO / "deploy" / "mosquitto" / "make-passwd.sh").read_text()
DEPLOYMENT_DOC = (REPO / "docs" / "deployment.md").read_text()

# name:tag, the tag holding a full major.minor.patch version, optionally @sha256:<digest>.
PINNED = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9._-]*\d+\.\d+\.\d+[A-Za-z0-9._-]*)"
    r"(@sha256:[0-9a-f]{64})?$"
)


def default_of(reference: str) -> str:
    """``${VAR:-image}`` -> ``image``: what runs when the operator overrides nothing."""
    match = re.fullmatch(r"\$\{[A-Z0-9_]+:-([^}]+)\}", reference)
    return match.group(1) if match else reference


def compose_images() -> dict[str, str]:
    return {
        name: default_of(service["image"])
        for name, service in COMPOSE["services"].items()
        if "image" in service
    }


def dockerfile_images() -> list[str]:
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.MULTILINE))
    return [
        arguments[ref[2:-1]] if ref.startswith("${") else ref
        for ref in re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    ]


def test_the_pattern_refuses_floating_tags() -> None:
    for floating in (
        "timescale/timescaledb:latest-pg16",
        "eclipse-mosquitto:2",
        "eclipse-mosquitto:latest",
        "python:3.11-slim",
        "telemon:latest",
        "postgres",
    ):
        assert not PINNED.match(floating), floating
    assert PINNED.match("timescale/timescaledb:2.28.3-pg16")


@pytest.mark.parametrize(
    "image", [*compose_images().values(), *dockerfile_images()], ids=lambda image: image
)
def test_image_is_pinned_to_an_exact_version(image: str) -> None:
    assert PINNED.match(image), f"{image} floats: pin it to the version it was tested with"


def test_every_service_image_is_covered() -> None:
    # The telemon services share one image, built from the Dockerfile (checked above).
    assert set(compose_images()) == set(COMPOSE["services"])
    assert dockerfile_images(), "the Dockerfile has no FROM"


def test_the_telemon_image_is_tagged_with_the_package_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert compose_images()["migrate"] == f"telemon:{version}"


def test_make_passwd_falls_back_to_the_broker_image_compose_runs() -> None:
    fallback = re.search(r'MOSQUITTO_IMAGE:-([^}"]+)\}', MAKE_PASSWD).group(1)
    assert fallback == compose_images()["mqtt"]


def test_the_deployment_guide_names_the_tested_versions() -> None:
    for image in [compose_images()["db"], compose_images()["mqtt"], *dockerfile_images()]:
        assert f"`{image}`" in DEPLOYMENT_DOC, f"docs/deployment.md: say that {image} was tested"
