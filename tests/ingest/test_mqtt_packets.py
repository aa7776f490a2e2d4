"""The ingest worker's MQTT packets as bytes, against the layouts of the MQTT 5.0 specification."""

from __future__ import annotations

import pytest

from ingest import mqtt_packets as packets
from ingest.mqtt_packets import MalformedPacket, Packet, PacketType


@pytest.mark.parametrize(
    ("length", "encoded"),
    [  # the specification's table 1.5.5 (Variable Byte Integer), at each size's bounds
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16_383, "ff7f"),
        (16_384, "808001"),
        (2_097_151, "ffff7f"),
        (2_097_152, "80808001"),
        (268_435_455, "ffffff7f"),
    ],
)
def test_remaining_length_is_cut_at_its_encoded_bytes(length: int, encoded: str) -> None:
    header = bytes([0x30]) + bytes.fromhex(encoded)
    body = b"\x00\x01t" + b"x" * (length - 3) if length >= 3 else b"\x00" * length
    found, used = packets.split_packets(header + body + b"\x30")  # and a packet's first byte
    assert used == len(header) + length
    assert [(p.type, len(p.body)) for p in found] == [(PacketType.PUBLISH, length)]


def test_a_remaining_length_of_five_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        packets.split_packets(bytes.fromhex("30ffffffff7f"))


def test_connect_3_1_1_persistent_session_without_login() -> None:
    assert packets.connect("abc", mqtt5=False, keepalive=60) == bytes.fromhex(
        "100f00044d5154540400003c0003616263"
    )


def test_connect_5_with_login_session_expiry_and_receive_maximum() -> None:
    assert packets.connect(
        "abc",
        mqtt5=True,
        keepalive=30,
        username="u",
        password="p",
        session_expiry_s=86_400,
        receive_maximum=10_000,
    ) == bytes.fromhex(
        "101e"  # CONNECT, 30 bytes follow
        "00044d515454"
        "05"
        "c0"
        "001e"  # "MQTT", level 5, user name + password, keepalive 30
        "08"
        "1100015180"
        "212710"  # properties: session expiry 86400, receive maximum 10000
        "0003616263"
        "000175"
        "000170"  # client id, user name, password
    )


def test_subscribe_asks_each_filter_at_its_qos() -> None:
    assert packets.subscribe(1, [("$share/g/a", 1), ("b/+", 0)], mqtt5=True) == bytes.fromhex(
        "8216000100000a" + b"$share/g/a".hex() + "010003" + b"b/+".hex() + "00"
    )
    assert packets.subscribe(7, [("b/+", 1)], mqtt5=False) == bytes.fromhex("820800070003622f2b01")


def test_a_batch_of_pubacks_is_one_buffer_in_order() -> None:
    assert packets.pubacks([10, 0x1234, 65_535]) == bytes.fromhex("4002000a400212344002ffff")
    assert packets.pubacks([]) == b""


PUBLISH_5 = bytes.fromhex(
    "3d0f"  # PUBLISH, DUP, QoS 2 (flags d: dup 1, qos 2, retain 1), 15 bytes
    "0003612f62"
    "0102"  # topic "a/b", packet id 258
    "03"
    "010100"  # properties: 3 bytes (payload format indicator 1, then a padding byte)
    "68692100"  # payload
)


def test_publish_5_skips_its_properties() -> None:
    found, used = packets.split_packets(PUBLISH_5)
    assert used == len(PUBLISH_5)
    assert packets.parse_publish(found[0], mqtt5=True) == packets.Publish(
        "a/b", b"hi!\x00", qos=2, mid=258, retain=True
    )


def test_publish_3_1_1_at_qos_1_and_qos_0() -> None:
    at_1 = Packet(PacketType.PUBLISH, 0x02, bytes.fromhex("0001740009") + b"{}")
    assert packets.parse_publish(at_1, mqtt5=False) == packets.Publish("t", b"{}", 1, 9, False)
    at_0 = Packet(PacketType.PUBLISH, 0x01, bytes.fromhex("000174") + b"{}")
    assert packets.parse_publish(at_0, mqtt5=False) == packets.Publish("t", b"{}", 0, 0, True)
    # The same bytes as MQTT 5 would read a property length from the payload.
    at_0_5 = Packet(PacketType.PUBLISH, 0x00, bytes.fromhex("00017400") + b"{}")
    assert packets.parse_publish(at_0_5, mqtt5=True) == packets.Publish("t", b"{}", 0, 0, False)


@pytest.mark.parametrize(
    ("flags", "body", "why"),
    [
        (0x06, bytes.fromhex("000174") + b"x", "QoS 3"),
        (0x02, bytes.fromhex("000174"), "no packet identifier"),
        (0x00, bytes.fromhex("0002ff74"), "topic not UTF-8"),
        (0x00, bytes.fromhex("00017405"), "properties longer than the packet"),
        (0x00, b"\x00", "no topic"),
    ],
)
def test_a_malformed_publish_is_refused(flags: int, body: bytes, why: str) -> None:
    with pytest.raises(MalformedPacket):
        packets.parse_publish(Packet(PacketType.PUBLISH, flags, body), mqtt5=True)


def test_packets_cut_anywhere_come_out_whole_and_once() -> None:
    stream = PUBLISH_5 + bytes.fromhex("d000") + bytes.fromhex("90050001000180") + PUBLISH_5
    for cut in range(len(stream) + 1):
        first, used = packets.split_packets(stream[:cut])
        rest, used_rest = packets.split_packets(stream[used:])
        assert used + used_rest == len(stream)
        assert [p.type for p in first + rest] == [3, 13, 9, 3]


def test_connack_suback_and_disconnect_carry_their_reason_codes() -> None:
    (connack, suback_5, suback_3, gone), _ = packets.split_packets(
        bytes.fromhex("20020100900500010001809003000201e0018e")
    )
    assert packets.parse_connack(connack) == packets.Connack(session_present=True, reason_code=0)
    assert packets.parse_suback(suback_5, mqtt5=True) == packets.Suback(1, [0x01, 0x80])
    assert packets.parse_suback(suback_3, mqtt5=False) == packets.Suback(2, [0x01])
    assert packets.disconnect_reason(gone) == 0x8E
    assert packets.disconnect_reason(Packet(PacketType.DISCONNECT, 0, b"")) == 0
