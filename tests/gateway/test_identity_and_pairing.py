import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.identity import GatewayIdentity, Secret
from gateway.pairing import PairingTable
from telemon.checks import InvalidValue
from telemon.payload import GatewayConfig, PairedDevice


def test_identity_is_private_and_logs_in_as_the_gateway(tmp_path):
    identity = GatewayIdentity(
        gateway_id="gw-0001",
        patient_id="P0001",
        mqtt_url="mqtts://broker.example:8883",
        mqtt_password=Secret("s3cret"),
    )
    path = identity.save(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = GatewayIdentity.load(tmp_path)
    assert loaded == identity
    broker = loaded.broker()
    assert (broker.username, broker.password, broker.tls, broker.port) == (
        "gw-0001",
        "s3cret",
        True,
        8883,
    )
    assert "s3cret" not in repr(loaded)
    embedded = replace(identity, mqtt_url="mqtt://127.0.0.1:1884?protocol=3.1.1")
    assert embedded.broker().protocol == "3.1.1"


def test_missing_identity_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="telemon gateway provision"):
        GatewayIdentity.load(tmp_path)


def test_a_broken_identity_file_is_refused_saying_which_field_and_never_the_password(tmp_path):
    identity = GatewayIdentity(
        gateway_id="gw-0001",
        patient_id="P0001",
        mqtt_url="mqtts://broker.example:8883",
        mqtt_password="s3cret",  # its text, as the file holds it, is taken as a Secret
        mqtt_ca_file="/etc/ssl/ca.pem",
    )
    assert isinstance(identity.mqtt_password, Secret) and identity.mqtt_ca_file == Path(
        "/etc/ssl/ca.pem"
    )
    assert "s3cret" not in repr(identity) and "s3cret" not in str(identity.mqtt_password)
    path = identity.save(tmp_path)
    data = json.loads(path.read_text())
    data |= {"system_id": "fe:ed", "surprise": 1}
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidValue) as caught:
        GatewayIdentity.load(tmp_path)
    assert [field for field, _ in caught.value.problems] == ["surprise", "system_id"]
    assert "s3cret" not in str(caught.value)
    path.write_text("{not json")
    with pytest.raises(InvalidValue, match="not JSON"):
        GatewayIdentity.load(tmp_path)


def test_pairing_table_persists_and_finds_devices_case_insensitively(tmp_path):
    assert PairingTable.load(tmp_path) == PairingTable()
    cuff = PairedDevice(address="c0:ff:ee:00:00:02", kind="blood_pressure", patient_id="P0001")
    table = PairingTable.from_config(GatewayConfig(gateway_id="gw-0001", revision=4, devices=[]))
    table = table.with_device(cuff).with_device(cuff)
    table.save(tmp_path)
    loaded = PairingTable.load(tmp_path)
    assert loaded.revision == 4
    assert loaded.devices == (cuff,)
    assert loaded.find("C0:FF:EE:00:00:02") == cuff
    assert loaded.find("C0:FF:EE:00:00:99") is None
