"""The lock files: every package at one version with its hashes, and what is installed from them.

A fresh install once took whatever was newest that day (starlette 1.10, fastapi 0.165,
hypothesis 6.170 in one week), so two machines could test different code. One lock per
installable part, each installed with --require-hashes: CI (scripts/test) test.txt, the server
image (Dockerfile) server.txt, the Raspberry Pi steps (docs/gateway.md) gateway.txt, and
demo.txt for `telemon demo`; scripts/lock refreshes them.
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


def wanted(*extras: str) -> list[Requirement]:
    """The base dependencies and those of ``extras``, an extra naming others of ours expanded."""
    found = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
    optional = PYPROJECT["project"]["optional-dependencies"]
    for extra in extras:
        for requirement in map(Requirement, optional[extra]):
            if requirement.name == PYPROJECT["project"]["name"]:
                found += wanted(*requirement.extras)
            else:
                found.append(requirement)
    return found


# Each lock file, and the extras it is compiled from (scripts/lock).
LOCKS = {
    "gateway.txt": ("gateway",),
    "server.txt": ("server", "bumble"),
    "demo.txt": ("demo",),
    "test.txt": ("test",),
}


def test_every_lock_file_is_checked() -> None:
    assert sorted(path.name for path in (REPO / "requirements").glob("*.txt")) == sorted(LOCKS)
    script = (REPO / "scripts" / "lock").read_text()
    for lock, extras in LOCKS.items():
        options = " ".join(f"--extra {extra}" for extra in extras)
        assert f"compile {options} --output-file requirements/{lock}" in script


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_each_dependency_is_locked_at_a_version_pyproject_allows(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = locked(lock)
    for requirement in wanted(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from requirements/{lock}: run scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock} pins {name} {pins[name]}, pyproject wants {requirement}"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_carries_hashes_and_no_machine_paths(lock: str) -> None:
    text = (REPO / "requirements" / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1].strip())
    assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry)
    assert "--extra-index-url" not in text and "--find-links" not in text and "file://" not in text


def test_ci_the_image_and_the_pi_install_from_the_lock() -> None:
    script = (REPO / "scripts" / "test").read_text()
    assert "--require-hashes -r requirements/test.txt" in script
    assert "--no-deps -e ." in script
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/server.txt" in dockerfile
    assert "install --no-deps ." in dockerfile
    assert "!requirements/server.txt" in (REPO / ".dockerignore").read_text().split()
    pi_steps = (REPO / "docs" / "gateway.md").read_text()
    assert "--require-hashes -r requirements/gateway.txt" in pi_steps


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
