"""The shipped broker configuration enforces MQTT contract v1 on the real mosquitto binary.

One broker per module, on a spare loopback port in a temporary directory. Its configuration is
deploy/mosquitto/mosquitto.conf with only the listener, the file paths and the process user
rewritten, and it uses deploy/mosquitto/acl unchanged and a password file made by
deploy/mosquitto/make-passwd.sh, so the test covers exactly what compose.yaml mounts.

"Not delivered" is proven as tests/mqtt_clients.py says, without sleeping.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest

from tests.mqtt_clients import (
    TIMEOUT,
    BrokerLogins,
    Client,
    config,
    connected,
    devices,
    marker,
    obs,
    status,
)

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_DIR = REPO / "deploy" / "mosquitto"

# Debian installs the broker in /usr/sbin, which a non-root PATH may lack.
MOSQUITTO = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
pytestmark = pytest.mark.skipif(
    MOSQUITTO is None or shutil.which("mosquitto_passwd") is None,
    reason="needs the mosquitto broker and mosquitto_passwd (Debian package mosquitto)",
)


@dataclass(frozen=True)
class Broker(BrokerLogins):
    log: Path


def _spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_passwords(passwd: Path) -> dict[str, str]:
    """Run the shipped make-passwd.sh and read the new passwords from its KEY=VALUE output.

    The script also restricts the ACL file it is given: a byte-identical copy of the shipped one
    beside ``passwd``, so that the checkout's own file keeps its owner.
    """
    acl = passwd.parent / "acl"
    shutil.copyfile(MOSQUITTO_DIR / "acl", acl)
    env = {**os.environ, "MOSQUITTO_PASSWD_FILE": str(passwd), "MOSQUITTO_ACL_FILE": str(acl)}
    script = str(MOSQUITTO_DIR / "make-passwd.sh")
    run = [
        subprocess.run(
            ["bash", script, *args], env=env, capture_output=True, text=True, check=True
        ).stdout
        for args in (["server"], ["gateway", "gw-0001", "gw-0002"])
    ]
    server = dict(line.split("=", 1) for line in run[0].splitlines())
    passwords = {
        "ingest": server["MQTT_INGEST_PASSWORD"],
        "server": server["MQTT_SERVER_PASSWORD"],
    }
    for line in run[1].splitlines():
        url = urlsplit(line.removeprefix("TELEMON_MQTT_URL="))
        assert url.scheme == "mqtts" and url.port == 8883
        passwords[url.username] = url.password
    assert set(passwords) == {"ingest", "server", "gw-0001", "gw-0002"}
    return passwords


def _test_conf(port: int, tmp: Path) -> str:
    """The shipped mosquitto.conf with container paths and the listener moved into ``tmp``."""
    shipped = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    rewrites = {
        r"^listener 1883$": f"listener {port} 127.0.0.1",
        r"^password_file .*$": f"password_file {tmp / 'passwd'}",
        r"^acl_file .*$": f"acl_file {tmp / 'acl'}",  # the shipped acl, copied by _make_passwords
        r"^persistence_location .*$": f"persistence_location {tmp}/",
    }
    for pattern, replacement in rewrites.items():
        shipped, count = re.subn(pattern, replacement, shipped, flags=re.MULTILINE)
        assert count == 1, f"shipped mosquitto.conf no longer has exactly one {pattern!r}"
    # Run as whoever runs the tests: as root, mosquitto would otherwise switch to the user
    # "mosquitto", which cannot read the temporary directory.
    return shipped + f"\nuser {getpass.getuser()}\n"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("mosquitto")
    passwords = _make_passwords(tmp / "passwd")
    port = _spare_port()
    (tmp / "mosquitto.conf").write_text(_test_conf(port, tmp))
    log = tmp / "mosquitto.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(tmp / "mosquitto.conf")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"mosquitto exited {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not listen on {port}:\n{log.read_text()}")
            time.sleep(0.05)
        yield Broker(port, passwords, log)
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_anonymous_unknown_user_and_wrong_password_are_refused(broker: Broker) -> None:
    for username, password in [
        (None, None),
        ("gw-0001", "not-the-password"),
        ("gw-0001", broker.passwords["gw-0002"]),
        ("gw-9999", broker.passwords["gw-0001"]),
    ]:
        client = Client(broker, username, password)
        assert client.connack.is_failure
        assert client.connack.getName() == "Not authorized", (username, client.connack)


def test_gateway_observations_reach_ingest_directly_and_through_shared_group(
    broker: Broker,
) -> None:
    with (
        connected(broker, "ingest") as plain,
        connected(broker, "ingest") as shared,
        connected(broker, "gw-0001") as gateway,
    ):
        assert not plain.subscribe("telemon/v1/gw/+/obs")[0].is_failure
        assert not shared.subscribe("$share/ingest/telemon/v1/gw/+/obs")[0].is_failure
        batch = marker("obs")
        gateway.publish(obs("gw-0001"), batch)
        assert plain.receive_until(batch) == [(obs("gw-0001"), batch)]
        assert shared.receive_until(batch) == [(obs("gw-0001"), batch)]


def test_gateway_status_devices_and_will_reach_ingest(broker: Broker) -> None:
    with connected(broker, "ingest") as ingest:
        for channel in ("status", "devices"):
            ingest.subscribe(f"$share/ingest/telemon/v1/gw/+/{channel}")
        gateway = Client(
            broker,
            "gw-0001",
            broker.passwords["gw-0001"],
            protocol=mqtt.MQTTv5,
            will=(status("gw-0001"), b"offline"),
        )
        assert not gateway.connack.is_failure, gateway.connack
        inventory, online = marker("devices"), marker("online")
        gateway.publish(devices("gw-0001"), inventory, retain=True)
        gateway.publish(status("gw-0001"), online, retain=True)
        assert ingest.receive_until(online) == [
            (devices("gw-0001"), inventory),
            (status("gw-0001"), online),
        ]
        # The last will is checked against the ACL like any publish: it must get through.
        gateway.close(with_will=True)
        msg = ingest.messages.get(timeout=TIMEOUT)
        assert (msg.topic, msg.payload) == (status("gw-0001"), b"offline")


def test_gateway_cannot_publish_as_another_gateway(broker: Broker) -> None:
    with (
        connected(broker, "ingest") as plain,
        connected(broker, "ingest") as shared,
        connected(broker, "gw-0001") as gateway,
        # A client id equal to another gateway's id grants nothing: the ACL binds %u, the username.
        connected(broker, "gw-0002", client_id="gw-0001") as impostor,
    ):
        plain.subscribe("telemon/v1/gw/+/+")
        shared.subscribe("$share/ingest/telemon/v1/gw/+/+")
        for topic in (obs("gw-0002"), status("gw-0002"), devices("gw-0002"), config("gw-0002")):
            gateway.publish(topic, b"forged by gw-0001")
        impostor.publish(obs("gw-0001"), b"forged by gw-0002")
        impostor_own = marker("gw-0002-own")
        impostor.publish(obs("gw-0002"), impostor_own)
        sentinel = marker("gw-0001-own")
        gateway.publish(obs("gw-0001"), sentinel)
        for ingest in (plain, shared):
            # Retained status/devices of earlier tests may come first: only forgeries matter.
            received = ingest.receive_until(sentinel)
            assert [item for item in received if item[1].startswith(b"forged")] == []
            # ...while each gateway's own observations get through.
            assert (obs("gw-0002"), impostor_own) in received


def test_gateway_cannot_read_other_gateways_or_observations(broker: Broker) -> None:
    with connected(broker, "server") as server, connected(broker, "gw-0002") as other:
        # A retained config for gw-0002 exists before gw-0001 subscribes.
        server.publish(config("gw-0002"), b"secret config of gw-0002", retain=True)
        with connected(broker, "gw-0001") as gateway:
            subscriptions = [
                config("gw-0002"),
                "telemon/v1/gw/+/config",
                "telemon/v1/gw/+/obs",
                obs("gw-0001"),
                "$share/ingest/telemon/v1/gw/+/obs",
                "#",
                config("gw-0001"),
            ]
            # Mosquitto 2.0's acl_file grants every SUBSCRIBE (its default ACL check returns
            # success for subscriptions) and checks "read" on each message it would deliver: what
            # must never happen is a delivery, which is what this test checks.
            for topic in subscriptions:
                gateway.subscribe(topic)
            server.publish(config("gw-0002"), b"live config of gw-0002")
            other.publish(obs("gw-0002"), b"observations of gw-0002")
            other.publish(status("gw-0002"), b"status of gw-0002")
            sentinel = marker("config-gw-0001")
            server.publish(config("gw-0001"), sentinel)
            received = gateway.receive_until(sentinel)
        # Only its own config (once: mosquitto sends a client one copy however many of its
        # subscriptions match); nothing of gw-0002, not even its retained config.
        assert received == [(config("gw-0001"), sentinel)]
        server.publish(config("gw-0002"), b"", retain=True)  # clear the retained message


def test_server_configures_gateway_which_gets_it_retained(broker: Broker) -> None:
    settings = marker("config")
    with connected(broker, "server") as server:
        server.publish(config("gw-0001"), settings, retain=True)
    # The gateway was offline: it finds its config when it (re)connects and subscribes.
    with connected(broker, "gw-0001") as gateway:
        assert not gateway.subscribe(config("gw-0001"))[0].is_failure
        msg = gateway.messages.get(timeout=TIMEOUT)
        assert (msg.topic, msg.payload, msg.retain) == (config("gw-0001"), settings, True)
        with connected(broker, "server") as server:
            server.publish(config("gw-0001"), b"", retain=True)


def test_only_server_may_publish_config(broker: Broker) -> None:
    with (
        connected(broker, "gw-0001") as gateway,
        connected(broker, "ingest") as ingest,
        connected(broker, "server") as server,
    ):
        gateway.subscribe(config("gw-0001"))
        ingest.publish(config("gw-0001"), b"forged by ingest")
        gateway.publish(config("gw-0001"), b"forged by the gateway itself")
        sentinel = marker("server-config")
        server.publish(config("gw-0001"), sentinel)
        assert gateway.receive_until(sentinel) == [(config("gw-0001"), sentinel)]


def test_compose_healthcheck_command_passes_against_the_broker(broker: Broker) -> None:
    """The mqtt service's healthcheck in compose.yaml succeeds on a broker with this config."""
    yaml = pytest.importorskip("yaml")  # PyYAML comes with amqtt, a project dependency
    test = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["mqtt"]["healthcheck"]
    kind, command = test["test"]
    assert kind == "CMD-SHELL"
    assert "-p 1883" in command
    local = command.replace("-p 1883", f"-p {broker.port}")
    assert subprocess.run(["sh", "-c", local], timeout=TIMEOUT, check=False).returncode == 0
    # ...and fails when nothing listens there.
    dead = command.replace("-p 1883", f"-p {_spare_port()}")
    assert subprocess.run(["sh", "-c", dead], timeout=TIMEOUT, check=False).returncode != 0
