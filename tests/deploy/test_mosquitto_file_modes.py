"""make-passwd.sh leaves the broker's password and ACL files as Mosquitto 2.0 asks for them.

Mosquitto 2.0 warns that future versions will refuse a password or ACL file that others can read
or that does not belong to the broker's user and group (uid and gid 1883 in the eclipse-mosquitto
image, which reads both files after dropping root). The script is run for real, on copies.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_DIR = REPO / "deploy" / "mosquitto"
BROKER_UID = BROKER_GID = 1883  # the mosquitto user of the eclipse-mosquitto image

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd (Debian: mosquitto)"
)


def make_passwd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MOSQUITTO_PASSWD_FILE": str(tmp_path / "passwd"),
        "MOSQUITTO_ACL_FILE": str(tmp_path / "acl"),
    }
    return subprocess.run(
        ["bash", str(MOSQUITTO_DIR / "make-passwd.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def assert_only_the_broker_reads(path: Path, stderr: str) -> None:
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600, f"{path.name}: {oct(info.st_mode)}"
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (BROKER_UID, BROKER_GID), path.name
    else:  # without root the owner cannot change: the script must say so
        assert f"could not chown {BROKER_UID}:{BROKER_GID} {path}" in stderr


@pytest.fixture
def world_readable_acl(tmp_path: Path) -> Path:
    acl = tmp_path / "acl"
    shutil.copyfile(MOSQUITTO_DIR / "acl", acl)
    acl.chmod(0o644)  # as a git checkout leaves it
    return acl


def test_new_credentials_leave_both_files_to_the_broker_alone(
    tmp_path: Path, world_readable_acl: Path
) -> None:
    done = [make_passwd(tmp_path, "server"), make_passwd(tmp_path, "gateway", "gw-0001")]
    for result in done:
        assert_only_the_broker_reads(tmp_path / "passwd", result.stderr)
        assert_only_the_broker_reads(world_readable_acl, result.stderr)
    # The ACL's content is untouched: only its owner and mode change.
    assert world_readable_acl.read_bytes() == (MOSQUITTO_DIR / "acl").read_bytes()


def test_permissions_alone_repairs_an_acl_rewritten_by_git(
    tmp_path: Path, world_readable_acl: Path
) -> None:
    make_passwd(tmp_path, "server")
    world_readable_acl.chmod(0o644)
    result = make_passwd(tmp_path, "permissions")
    assert_only_the_broker_reads(world_readable_acl, result.stderr)
    assert result.stdout == ""  # no new password was made
