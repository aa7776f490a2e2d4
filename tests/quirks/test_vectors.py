"""Byte vectors for each quirk (layouts in docs/devices/), and malformed bytes refused with a
reason, as for the standard profiles (tests/gatt)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway import quirks
from gateway.devices.quirk_session import SampleGate
from gateway.gatt import DecodeError, decode_all
from gateway.gatt.quirks import contec
from gateway.gatt.quirks.beurer import Bm85Status
from gateway.gatt.quirks.oximetry import FINGER_OUT
from gateway.quirks import QUIRKS, Match, Quirk, Seen, find
from telemon.device_kinds import DeviceKind


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def values(model: str, payload: bytes) -> dict[str, float]:
    return {r.metric: r.value for r in quirks.decode(model, payload)}


def skipped(model: str, payload: bytes) -> dict[str, str]:
    return {s.field: s.reason for s in quirks.decode_all(model, payload).skipped}


def refused(model: str, payload: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        quirks.decode_all(model, payload)
    return info.value


# -- Beurer BM85 ------------------------------------------------------------------------------
# Values recorded from a real BM85, as blood-pressure-monitor-fl's test of its BM85 quirk has them
# (app/test/features/bluetooth/logic/characteristics/ble_measurement_data_test.dart).
# flags 0x56: time stamp, pulse rate, status, reserved bit 6; user flag clear, user byte sent.
# 106/71 mmHg, MAP 0, 2026-08-11 18:31:00, pulse 63 (00 3F big-endian), user 0, status 0.
BM85 = h("56 6A00 4700 0000 EA07 08 0B 12 1F 00 003F 00 0000")
BM85_SECOND_USER = h("56 7100 4900 0000 EA07 08 0B 14 38 00 0041 01 0000")
BM85_STATUS_BIT_6 = h("56 7700 4600 0000 EA07 08 0B 14 39 00 0057 01 0040")
BM85_IRREGULAR = h("56 7600 5000 0000 EA07 08 0B 14 1B 00 003C 00 0004")  # status 00 04


def test_bm85_vector():
    decoded = quirks.decode_all("beurer_bm85", BM85)
    assert values("beurer_bm85", BM85) == {"systolic": 106, "diastolic": 71, "pulse_rate": 63}
    assert {r.measured_at for r in decoded.readings} == {datetime(2026, 8, 11, 18, 31)}
    assert all(r.flags == () for r in decoded.readings)
    # The flag is clear, yet the byte is the cuff's user (0 first, 1 second).
    assert {r.context["user_id"] for r in decoded.readings} == {"0"}
    assert (
        "does not compute mean arterial pressure"
        in skipped("beurer_bm85", BM85)["mean_arterial_pressure"]
    )
    assert decoded.record.encode() == BM85  # the simulator speaks exactly these bytes


def test_bm85_second_user_and_status_bits():
    second = quirks.decode("beurer_bm85", BM85_SECOND_USER)
    assert {r.metric: r.value for r in second} == {
        "systolic": 113,
        "diastolic": 73,
        "pulse_rate": 65,
    }
    assert {r.context["user_id"] for r in second} == {"1"}
    # Status bit 6 (reserved in BLS) is set by the cuff: kept in the record, no flag.
    decoded = quirks.decode_all("beurer_bm85", BM85_STATUS_BIT_6)
    assert {r.metric: r.value for r in decoded.readings}["pulse_rate"] == 87
    assert all(r.flags == () for r in decoded.readings)
    assert decoded.record.status == Bm85Status.VENDOR_BIT_6
    irregular = quirks.decode("beurer_bm85", BM85_IRREGULAR)
    assert {r.metric: r.value for r in irregular}["pulse_rate"] == 60
    assert all("irregular_pulse" in r.flags for r in irregular)


def test_bm85_map_when_sent():
    payload = h("56 8000 5200 6100 E907 03 03 09 00 00 0047 02 0000")  # MAP 97 sent: used
    readings = quirks.decode("beurer_bm85", payload)
    assert {r.metric: r.value for r in readings}["mean_arterial_pressure"] == 97


def test_the_standard_decoder_refuses_what_the_bm85_sends():
    with pytest.raises(DecodeError, match="reserved bits"):
        decode_all("2a35", BM85)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (BM85[:-3], "truncated"),  # no user byte and no status
        (BM85 + b"\x00", "trailing"),
        (h("56 6A00 4700 0000 EA07080B121F00 003F 00 0080"), "reserved Bm85Status"),
        (h("56 6A00 4700 0000 EA07080B121F00 003F 00 0018"), "range detection value 3"),
        (h("57 6A00 4700 0000 EA07080B121F00 003F 00 0000")[:5], "truncated"),
    ],
)
def test_bm85_malformed(payload, reason):
    error = refused("beurer_bm85", payload)
    assert reason in str(error)
    assert error.characteristic == "beurer_bm85 blood_pressure_measurement"


# -- Contec CMS50D-BT ---------------------------------------------------------------------------
# Frames: EB type data... checksum (sum & 0x7F). OSCAR's test frame "eb 00 05 40 03" + checksum,
# then values: b2 02 (pulse bit 7), pulse 0x48 | 0x80 = 200, SpO2 0x61 = 97, PI 00 00.
WAVE = h("EB 00 05 40 03 33")
CONTEC = WAVE + h("EB 01 02 48 61 00 00 17")


def test_contec_vector():
    assert values("contec_cms50d_bt", CONTEC) == {"spo2": 97, "pulse_rate": 200}
    [spo2, pulse] = quirks.decode("contec_cms50d_bt", CONTEC)
    assert spo2.measured_at is None  # a stream carries no time: the gateway stamps it
    assert spo2.context == {"plx_mode": "continuous", "device_protocol": "contec_cms50d_bt"}
    assert pulse.context["pulse_source"] == "oximeter"
    record = quirks.decode_all("contec_cms50d_bt", CONTEC).record
    assert record.frames[0] == contec.WaveformFrame(pleth=64, bar_graph=3, other_bits=5)
    assert record.encode() == CONTEC


def test_contec_commands_are_the_sdks():
    assert h("9B 00 1B") == contec.PREPARE_REALTIME
    assert h("9B 01 1C") == contec.START_REALTIME
    assert h("9B 7F 1A") == contec.STOP_REALTIME
    assert h("9A 1A") == contec.KEEPALIVE


def test_contec_waveform_and_end_frames_give_no_reading():
    decoded = quirks.decode_all("contec_cms50d_bt", WAVE + WAVE + h("EB 7F 6A"))
    assert decoded.readings == () and decoded.skipped == ()
    assert len(decoded.record.frames) == 3


def test_contec_frames_split_across_notifications():
    # The values frame is cut after 3 bytes: its head ends this notification, its tail
    # starts the next one. Neither is an error; the whole frames around them are read.
    first = WAVE + WAVE + CONTEC[6:9]
    second = CONTEC[9:] + h("EB 01 00 46 60 00 00 12")  # pulse 70, SpO2 96
    assert quirks.decode_all("contec_cms50d_bt", first).readings == ()
    assert quirks.decode_all("contec_cms50d_bt", first).record.tail == CONTEC[6:9]
    assert values("contec_cms50d_bt", second) == {"spo2": 96, "pulse_rate": 70}


def test_contec_finger_out_and_sentinels():
    finger_out = h("EB 00 00 00 10 7B") + h("EB 01 02 7F 7F 00 00 6C")
    assert skipped("contec_cms50d_bt", finger_out) == {"spo2": FINGER_OUT, "pulse_rate": FINGER_OUT}
    invalid = skipped("contec_cms50d_bt", h("EB 01 02 7F 7F 00 00 6C"))  # 127, 255
    assert set(invalid) == {"spo2", "pulse_rate"} and "127" in invalid["spo2"]
    zero = skipped("contec_cms50d_bt", h("EB 01 00 00 00 00 00 6C"))
    assert set(zero) == {"spo2", "pulse_rate"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (h("EC 00 05 40 03 34"), "frame 0xec is not a real-time frame"),
        (h("84 05 01 02 03"), "encrypted"),
        (h("EB 05 00 70"), "type 0x05"),
        (h("EB 00 05 40 03 34"), "checksum 0x34, expected 0x33"),
        (h("EB 01 02 48") + WAVE, "cut short"),
        (h("EB 01 02 48 66 00 00 1C"), "SpO2 102"),
    ],
)
def test_contec_malformed(payload, reason):
    error = refused("contec_cms50d_bt", payload)
    assert reason in str(error)
    assert error.characteristic == "contec_cms50d_bt stream"


# -- BerryMed BCI ------------------------------------------------------------------------------
# Signal 8 (88), pleth 40, bar 2 with pulse bit 7 (42), pulse low bits 02 -> 130, SpO2 96.
BCI = h("88 28 42 02 60")


def test_berrymed_vector():
    assert values("berrymed_bci", BCI) == {"spo2": 96, "pulse_rate": 130}
    assert values("berrymed_bci", BCI * 4) == {"spo2": 96, "pulse_rate": 130}  # one sample


def test_berrymed_finger_out_gives_no_reading():
    # The newest packet: probe unplugged (A0), no finger (10) with the sentinels.
    payload = BCI + h("A0 00 50 7F 7F")
    assert quirks.decode("berrymed_bci", payload) == []
    assert skipped("berrymed_bci", payload) == {"spo2": FINGER_OUT, "pulse_rate": FINGER_OUT}


def test_berrymed_sentinels():
    assert skipped("berrymed_bci", h("80 00 60 7F 7F")).keys() == {"spo2", "pulse_rate"}
    assert values("berrymed_bci", h("88 28 02 48 7F")) == {"pulse_rate": 72}
    assert "127" in skipped("berrymed_bci", h("88 28 02 48 7F"))["spo2"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (BCI + BCI[:2], "not whole 5-byte packets"),
        (h("08 28 42 02 60"), "lacks the sync bit"),
        (h("88 A8 42 02 60"), "out of step"),
        (h("88 28 02 48 65"), "SpO2 101"),
    ],
)
def test_berrymed_malformed(payload, reason):
    error = refused("berrymed_bci", payload)
    assert reason in str(error)
    assert error.characteristic == "berrymed_bci stream"


def test_unknown_model():
    assert "not a device model" in str(refused("acme_x", BCI))


# -- the table -------------------------------------------------------------------------------


def test_each_model_is_chosen_by_what_it_advertises_or_says():
    assert find(Seen(name="BM85"), DeviceKind.BLOOD_PRESSURE) is QUIRKS["beurer_bm85"]
    assert find(Seen(information={"model_number": "BM85"})) is QUIRKS["beurer_bm85"]
    assert find(Seen(name="SpO2080971")) is QUIRKS["contec_cms50d_bt"]
    assert find(Seen(name="SpO202")) is None  # another Contec model (CMS50FW), not this row
    assert find(Seen(name="BerryMed"), DeviceKind.PULSE_OXIMETER) is QUIRKS["berrymed_bci"]
    # The standard profile otherwise, and never a row of another kind.
    assert find(Seen(name="MS-BP651 1A2B")) is None
    assert find(Seen()) is None
    assert find(Seen(name="BerryMed"), DeviceKind.BLOOD_PRESSURE) is None


def test_manufacturer_data_rule():
    row = Quirk(
        model="by_company",
        kind=DeviceKind.PULSE_OXIMETER,
        matches=(Match(company_id=0x1234, manufacturer_data_prefix=b"\x01"),),
        service=QUIRKS["berrymed_bci"].service,
        characteristic=QUIRKS["berrymed_bci"].characteristic,
        decoder=QUIRKS["berrymed_bci"].decoder,
        deviation="test row",
    )
    table = {row.model: row}
    assert find(Seen(manufacturer_data={0x1234: b"\x01\x02"}), table=table) is row
    assert find(Seen(manufacturer_data={0x1234: b"\x02"}), table=table) is None
    assert find(Seen(manufacturer_data={0x4321: b"\x01"}), table=table) is None
    assert not Match().applies(Seen(name="anything"))  # a rule must say something


def test_streams_are_kept_at_one_sample_a_second():
    gate = SampleGate(1.0)
    start = datetime(2025, 3, 3, 9, 0)
    admitted = [gate.admit(start + timedelta(seconds=0.25 * n)) for n in range(9)]
    assert admitted == [True, False, False, False, True, False, False, False, True]
    assert all(SampleGate(None).admit(start) for _ in range(3))


# -- Contec: frames across notifications (the session's reassembler) ----------------------------
VALUES_98 = h("EB 01 00 46 62 00 00 14")  # pulse 70, SpO2 98


def reassembled_values(reassembler: contec.ContecReassembler, *notifications: bytes):
    """Each decoded payload's values, and everything dropped, over ``notifications`` in order."""
    found, dropped = [], []
    for notification in notifications:
        result = reassembler.feed(notification)
        found += [values("contec_cms50d_bt", p) for p in result.payloads]
        dropped += result.dropped
    return [v for v in found if v], dropped


@pytest.mark.parametrize("cut", range(1, len(VALUES_98)))
def test_contec_values_frame_split_at_every_position_is_read_once(cut):
    stream = WAVE + VALUES_98 + WAVE
    at = len(WAVE) + cut
    reassembler = contec.ContecReassembler()
    found, dropped = reassembled_values(reassembler, stream[:at], stream[at:])
    assert found == [{"spo2": 98, "pulse_rate": 70}]
    assert dropped == [] and reassembler.flush().dropped == ()
    # The pure decoder, per notification, reads neither half (a fragment, not an error).
    assert quirks.decode("contec_cms50d_bt", stream[:at]) == []
    assert quirks.decode("contec_cms50d_bt", stream[at:]) == []


def test_contec_a_completed_frame_is_a_sample_of_its_own():
    # The values frame completed from the previous notification, then a newer one whole:
    # both read (the older is not hidden behind the newer, as within one notification).
    reassembler = contec.ContecReassembler()
    found, dropped = reassembled_values(
        reassembler, WAVE + CONTEC[6:10], CONTEC[10:] + WAVE + VALUES_98
    )
    assert found == [{"spo2": 97, "pulse_rate": 200}, {"spo2": 98, "pulse_rate": 70}]
    assert dropped == []


def test_contec_garbage_between_frames_is_dropped_with_its_reason_and_the_frames_kept():
    reassembler = contec.ContecReassembler()
    stream = WAVE + h("05 06") + VALUES_98 + h("C1 02") + WAVE
    found, dropped = reassembled_values(reassembler, stream)
    assert found == [{"spo2": 98, "pulse_rate": 70}]
    assert [(d.payload, d.reason) for d in dropped] == [
        (h("05 06"), "2 bytes after a whole frame, before the next header"),
        (
            h("C1 02"),
            "contec_cms50d_bt stream: frame 0xc1 is not a real-time frame (byte offset 0)",
        ),
    ]


def test_contec_bytes_before_any_header_are_dropped_with_a_reason():
    # Connected mid-stream: the tail of a frame the gateway never saw begin.
    found, dropped = reassembled_values(contec.ContecReassembler(), VALUES_98[3:] + VALUES_98)
    assert found == [{"spo2": 98, "pulse_rate": 70}]
    [head] = dropped
    assert head.payload == VALUES_98[3:] and "rest of a frame not received" in head.reason


def test_contec_a_fragment_never_completed_is_dropped_with_a_reason():
    reassembler = contec.ContecReassembler()
    # Cut short by the next frame's header: dropped when that header arrives.
    found, dropped = reassembled_values(reassembler, WAVE + VALUES_98[:5], VALUES_98)
    assert found == [{"spo2": 98, "pulse_rate": 70}]
    [cut] = dropped
    assert cut.payload == VALUES_98[:5]
    assert cut.reason == "frame cut short: 5 of its 8 bytes before the next frame header"
    # Left at the end of the stream: dropped when the link closes.
    assert reassembler.feed(WAVE + VALUES_98[:4]).payloads == (WAVE,)
    [left] = reassembler.flush().dropped
    assert left.payload == VALUES_98[:4] and "the stream ended" in left.reason
    assert reassembler.flush().dropped == ()


def test_contec_a_bad_checksum_across_the_boundary_drops_that_frame_only():
    bad = VALUES_98[:-1] + b"\x15"
    reassembler = contec.ContecReassembler()
    found, dropped = reassembled_values(reassembler, WAVE + bad[:3], bad[3:] + VALUES_98)
    assert found == [{"spo2": 98, "pulse_rate": 70}]
    [error] = dropped
    assert error.payload == bad and "checksum 0x15, expected 0x14" in error.reason
