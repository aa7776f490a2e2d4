"""The lock files: every package at one version with its hashes, and what is installed from them.

A fresh install once took whatever was newest that day (starlette 1.10, fastapi 0.165,
hypothesis 6.170 in one week), so two machines could test different code. CI (scripts/test) and
the server image (Dockerfile) install from requirements/*.txt with --require-hashes;
scripts/lock refreshes them.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\]+) \\$", re.MULTILINE)


def locked(name: str) -> dict[str, str]:
    return {
        canonicalize_name(package): version
        for package, version in PIN.findall((REPO / "requirements" / name).read_text())
    }


@pytest.mark.parametrize(
    ("lock", "wanted"),
    [
        ("server.txt", PYPROJECT["project"]["dependencies"]),
        (
            "test.txt",
            PYPROJECT["project"]["dependencies"]
            + PYPROJECT["project"]["optional-dependencies"]["test"],
        ),
    ],
)
def test_each_dependency_is_locked_at_a_version_pyproject_allows(lock: str, wanted) -> None:
    pins = locked(lock)
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from requirements/{lock}: run scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock} pins {name} {pins[name]}, pyproject wants {requirement}"
        )


@pytest.mark.parametrize("lock", ["server.txt", "test.txt"])
def test_every_pin_carries_hashes_and_no_machine_paths(lock: str) -> None:
    text = (REPO / "requirements" / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1].strip())
    assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry)
    assert "--extra-index-url" not in text and "--find-links" not in text and "file://" not in text


def test_ci_and_the_image_install_from_the_lock() -> None:
    script = (REPO / "scripts" / "test").read_text()
    assert "--require-hashes -r requirements/test.txt" in script
    assert "--no-deps -e ." in script
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/server.txt" in dockerfile
    assert "install --no-deps ." in dockerfile
    assert "!requirements/server.txt" in (REPO / ".dockerignore").read_text().split()


def test_this_environment_is_the_lock() -> None:
    """What the suite runs on is what the lock says (CI installs nothing else)."""
    different = {}
    for name, version in locked("test.txt").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            different[name] = (version, None)
            continue
        if installed != version:
            different[name] = (version, installed)
    assert not different, f"locked vs installed: {different}; reinstall with scripts/test"
