import stat
from dataclasses import replace

import pytest

from gateway.identity import GatewayIdentity, Secret
from gateway.pairing import PairingTable
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
