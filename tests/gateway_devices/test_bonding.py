"""Bonded devices end to end (issue 19): a cuff whose measurement needs an encrypted link is
paired once, its bond is kept in the bumble backend's key store file, a restarted gateway only
re-encrypts, and a cuff that lost its bond is paired again and the loss is reported."""

from __future__ import annotations

import asyncio
import json

from firmware_sim.ble import radio
from telemon.payload_schema import GatewayStatusModel
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import measurement, observations


def systolic(collector, gateway_id) -> list[float]:
    return [
        o.value for o in observations(collector.snapshot(), gateway_id) if o.metric == "systolic"
    ]


async def take(cuff, value: float) -> None:
    await cuff.record(
        measurement("blood_pressure", {"systolic": value, "diastolic": 80, "pulse_rate": 70})
    )


async def test_bond_kept_across_restarts_and_renewed_when_the_cuff_lost_it(
    gateway, make, link, mqtt_url
) -> None:
    keystore = gateway.state_dir / "bonds.json"
    cuff = await make("blood_pressure", require_bonding=True)
    gateway.pair(cuff)
    status_topic = topic(gateway.id, Channel.STATUS)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS), status_topic) as collector:
        await take(cuff, 121)
        async with gateway.running(keystore=keystore):
            await asyncio.to_thread(collector.wait_for, lambda m: systolic(collector, gateway.id))
        assert cuff.pairings == 1
        bonds = json.loads(keystore.read_text())
        ((central_address, peers),) = bonds.items()
        assert cuff.address in {peer.split("/")[0] for peer in peers}

        # A new gateway process: the central comes up from the key store, with the address the
        # cuff bonded with, and only encrypts.
        await radio.close_central(link)
        await take(cuff, 122)
        async with gateway.running(keystore=keystore, status_interval=0.3) as runtime:
            await asyncio.to_thread(
                collector.wait_for, lambda m: systolic(collector, gateway.id) == [121, 122]
            )
            assert cuff.pairings == 1
            assert cuff.encryptions >= 2
            assert list(json.loads(keystore.read_text())) == [central_address]

            # The cuff loses its bond (battery out): the old key is refused, the gateway forgets
            # its side, pairs again on the next connection, and says so in its status.
            await cuff.wait_disconnected(10)
            await cuff.forget_bonds()
            await take(cuff, 123)
            await asyncio.to_thread(
                collector.wait_for, lambda m: systolic(collector, gateway.id) == [121, 122, 123]
            )
            assert cuff.pairings == 2
            assert runtime.manager.recovery_counts()["bond_lost"] == 1
            state = runtime.manager.state(cuff.address)
            assert state is not None and state.bonds_lost == 1

            def bond_loss_reported(messages) -> bool:
                return any(
                    m.topic == status_topic
                    and m.payload
                    and GatewayStatusModel.model_validate_json(m.payload).recoveries.get(
                        "bond_lost"
                    )
                    == 1
                    for m in messages
                )

            await asyncio.to_thread(collector.wait_for, bond_loss_reported)
    # The new bond replaced the old one in the file.
    assert list(json.loads(keystore.read_text())) == [central_address]


def test_only_a_refused_key_counts_as_a_lost_bond() -> None:
    from bleak.exc import BleakError

    from gateway.devices.bonding import bond_refused

    assert bond_refused(BleakError("Encrypting the link to X failed: PIN_OR_KEY_MISSING_ERROR"))
    assert bond_refused(BleakError("[org.bluez.Error.AuthenticationFailed] Authentication Failed"))
    assert not bond_refused(BleakError("Disconnected from X during a GATT operation"))
    assert not bond_refused(TimeoutError("Timed out connecting to X after 20 s"))


def test_an_unreadable_key_store_starts_without_bonds(tmp_path, caplog) -> None:
    keystore = tmp_path / "bonds.json"
    keystore.write_text("{not json")
    assert radio.stored_identity(keystore) is None
    assert "unreadable" in caplog.text
    assert not keystore.exists()  # set aside, so the new store starts clean
    assert (tmp_path / "bonds.json.unreadable").read_text() == "{not json"
    assert radio.stored_identity(tmp_path / "absent.json") is None
    keystore.write_text(json.dumps({"C2:8E:E5:D2:F7:32": {}}))
    identity = radio.stored_identity(keystore)
    assert identity is not None
    assert identity.to_string(with_type_qualifier=False) == "C2:8E:E5:D2:F7:32"
