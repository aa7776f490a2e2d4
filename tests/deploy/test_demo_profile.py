"""compose's demo profile stores what its simulated patient measures, and only in a demo database.

The sim service's command and broker login are taken from compose.yaml and run against the
shipped broker configuration (the fixture of test_mosquitto_acl.py: real mosquitto, the shipped
ACL, logins made by make-passwd.sh), with the real ingest service logged in as ``ingest``.
Before issue 16 every simulated gateway logged in with the service's one URL and no password of
its own, the broker refused them, and the demo stored nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from console.cohort import DemoRefused, demo_cohort
from console.demo import seed_demo_cohort
from ingest.service import IngestService
from telemon.config import Settings
from tests.deploy.test_mosquitto_acl import MOSQUITTO, Broker, broker  # noqa: F401 (fixture)
from tests.test_cli import run_cli

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
SIM = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["sim"]
STORED_WITHIN = 90.0  # seconds: the gateway's first batch after its devices are read

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto broker")


def sim_url(logins: Broker) -> str:
    """compose's TELEMON_MQTT_URL of the sim service, on the test broker."""
    url = SIM["environment"]["TELEMON_MQTT_URL"]
    assert url == "mqtt://gw-0001:${SIM_GATEWAY_PASSWORD:-}@mqtt:1883"
    password = logins.passwords["gw-0001"]  # made by make-passwd.sh, as the guide says
    return url.replace("${SIM_GATEWAY_PASSWORD:-}", password).replace(
        "@mqtt:1883", f"@127.0.0.1:{logins.port}"
    )


def sim_env(database_url: str, mqtt_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_MQTT_URL": mqtt_url,
        "TELEMON_DATA_DIR": str(data_dir),
    }


def stored_from(db: psycopg.Connection, gateway: str) -> int:
    return db.execute(
        "SELECT count(*) FROM observations o JOIN gateways g ON g.id = o.gateway_id "
        "WHERE g.code = %s",
        (gateway,),
    ).fetchone()[0]


def test_the_demo_profile_stores_its_patients_readings(
    broker: Broker,  # noqa: F811
    db: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
) -> None:
    assert SIM["command"][0] == "sim"
    ingest = IngestService(
        Settings(
            database_url=database_url,
            mqtt_url=f"mqtt://ingest:{broker.passwords['ingest']}@127.0.0.1:{broker.port}",
            ingest_shared_group=f"ingest-{uuid.uuid4().hex[:8]}",
            ingest_metrics_port=0,
            ingest_batch_ms=50,
        ),
        client_id=f"telemon-ingest-{uuid.uuid4().hex[:8]}",
        metrics_host="127.0.0.1",
    )
    ingest.start()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    environment |= sim_env(database_url, sim_url(broker), tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", "from console.cli import main; main()", *SIM["command"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    try:
        deadline = time.monotonic() + STORED_WITHIN
        while stored_from(db, "gw-0001") == 0:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the simulated patient's readings were not stored"
            time.sleep(0.5)
    finally:
        process.terminate()
        process.communicate(timeout=30)
        ingest.stop()
    dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    assert dead == 0


def test_sim_refuses_a_login_that_is_not_its_gateways(
    broker: Broker,  # noqa: F811
    db: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
) -> None:
    url = sim_url(broker)
    for args, login in [
        (["--patients", "2"], url),  # gw-0002 could not publish as gw-0001
        (["--patients", "1"], url.replace("gw-0001:", "gw-sim-0001:")),
    ]:
        result = run_cli("sim", *args, env=sim_env(database_url, login, tmp_path))
        assert result.returncode == 2, result.stderr
        assert "the broker lets a gateway publish only as itself" in result.stderr
        assert broker.passwords["gw-0001"] not in result.stderr
    # Refused before seeding: no demo people were added.
    assert db.execute("SELECT count(*) FROM staff").fetchone()[0] == 0


def test_sim_never_seeds_demo_logins_beside_real_staff(
    broker: Broker,  # noqa: F811
    db: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
) -> None:
    db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES ('dr.ferri', 'Dr Ferri', 'gp')"
    )
    before = db.execute("SELECT * FROM staff").fetchall()
    environment = sim_env(database_url, sim_url(broker), tmp_path)
    result = run_cli(*SIM["command"], env=environment)
    assert result.returncode == 2
    assert "the database has staff who are not the demo's (dr.ferri)" in result.stderr
    assert "Traceback" not in result.stderr
    assert db.execute("SELECT * FROM staff").fetchall() == before
    assert db.execute("SELECT count(*) FROM patients").fetchone()[0] == 0


def test_the_demo_reseeds_its_own_database(db: psycopg.Connection) -> None:
    # A second run of the demo on its own database is not refused.
    for _ in range(2):
        cohort, _ = seed_demo_cohort(db, 2, "+390200000000")
    staff = {row[0] for row in db.execute("SELECT username FROM staff")}
    assert staff == {member.username for member in cohort.staff}
    db.execute("INSERT INTO staff (username, display_name, role) VALUES ('x.y', 'X Y', 'nurse')")
    with pytest.raises(DemoRefused, match=r"\(x\.y\)"):
        seed_demo_cohort(db, 2, "+390200000000")
    assert cohort == demo_cohort(2)
