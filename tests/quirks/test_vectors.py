"""Byte vectors for each quirk (layouts in docs/devices/), and malformed bytes refused with a
reason, as for the standard profiles (tests/gatt)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway import quirks
from gateway.devices.quirk_session import SampleGate
from gateway.gatt import DecodeError, decode_all
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
# flags 0x36: time stamp, pulse rate, status, reserved bit 5; user flag clear, user byte sent.
# 128/82 mmHg, MAP 0, 2025-03-03 09:00:00, pulse 71 (00 47 big-endian), user 1, status 0x0004
# (irregular pulse, 00 04 big-endian).
BM85 = h("36 8000 5200 0000 E907 03 03 09 00 00 0047 01 0004")


def test_bm85_vector():
    decoded = quirks.decode_all("beurer_bm85", BM85)
    assert values("beurer_bm85", BM85) == {"systolic": 128, "diastolic": 82, "pulse_rate": 71}
    assert {r.measured_at for r in decoded.readings} == {datetime(2025, 3, 3, 9, 0)}
    assert all("irregular_pulse" in r.flags for r in decoded.readings)
    # The user byte is there but the flag says it means nothing.
    assert all("user_id" not in r.context for r in decoded.readings)
    assert (
        "does not compute mean arterial pressure"
        in skipped("beurer_bm85", BM85)["mean_arterial_pressure"]
    )


def test_bm85_user_flag_and_map_when_sent():
    # User flag set (0x3E), MAP 97 sent: both used.
    payload = h("3E 8000 5200 6100 E907 03 03 09 00 00 0047 02 0000")
    readings = quirks.decode("beurer_bm85", payload)
    assert {r.metric: r.value for r in readings}["mean_arterial_pressure"] == 97
    assert {r.context.get("user_id") for r in readings} == {"2"}


def test_the_standard_decoder_refuses_what_the_bm85_sends():
    with pytest.raises(DecodeError, match="reserved bits"):
        decode_all("2a35", BM85)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (BM85[:-3], "truncated"),  # no user byte and no status
        (BM85 + b"\x00", "trailing"),
        (h("36 8000 5200 0000 E907 03 03 09 00 00 0047 01 0040"), "reserved BloodPressureStatus"),
        (h("36 8000 5200 0000 E907 03 03 09 00 00 0047 01 0018"), "range detection value 3"),
        (h("37 8000 5200 0000 E907 03 03 09 00 00 0047 01 0004")[:5], "truncated"),
    ],
)
def test_bm85_malformed(payload, reason):
    error = refused("beurer_bm85", payload)
    assert reason in str(error)
    assert error.characteristic == "beurer_bm85 blood_pressure_measurement"


# -- Contec CMS50D-BT ---------------------------------------------------------------------------
# A waveform packet (pleth 50, bar 3), then values: status 0, pulse 200 (bit 7 in the high-bits
# byte: 82), SpO2 97.
CONTEC = h("01 80 B2 83  02 82 80 C8 E1")


def test_contec_vector():
    assert values("contec_cms50d_bt", CONTEC) == {"spo2": 97, "pulse_rate": 200}
    [spo2, pulse] = quirks.decode("contec_cms50d_bt", CONTEC)
    assert spo2.measured_at is None  # a stream carries no time: the gateway stamps it
    assert spo2.context == {"plx_mode": "continuous", "device_protocol": "contec_cms50d_bt"}
    assert pulse.context["pulse_source"] == "oximeter"


def test_contec_waveform_packets_give_no_reading():
    decoded = quirks.decode_all("contec_cms50d_bt", h("01 80 B2 83 01 80 B4 81"))
    assert decoded.readings == () and decoded.skipped == ()
    assert len(decoded.record.packets) == 2


def test_contec_finger_out_and_searching():
    assert skipped("contec_cms50d_bt", h("02 82 81 FF FF")) == {
        "spo2": FINGER_OUT,
        "pulse_rate": FINGER_OUT,
    }
    searching = quirks.decode("contec_cms50d_bt", h("02 80 82 C6 E0"))  # pulse 70, SpO2 96
    assert {r.metric: r.value for r in searching} == {"spo2": 96, "pulse_rate": 70}
    assert all("signal_analysis_ongoing" in r.flags for r in searching)
    invalid = skipped("contec_cms50d_bt", h("02 82 80 FF FF"))
    assert set(invalid) == {"spo2", "pulse_rate"} and "127" in invalid["spo2"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (h("05 80 80"), "packet type 0x05"),
        (h("82 80 80 C8 E1"), "data byte where a packet type was due"),
        (h("02 82 80 C8"), "truncated"),
        (h("02 82 00 C8 E1"), "lacks the framing bit"),
        (h("02 88 80 C8 E1"), "high bits"),
        (h("02 80 84 C8 E1"), "reserved bits"),
        (h("02 80 80 C8 E6"), "SpO2 102"),
    ],
)
def test_contec_malformed(payload, reason):
    assert reason in str(refused("contec_cms50d_bt", payload))


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
    assert find(Seen(name="CMS50D-BT")) is QUIRKS["contec_cms50d_bt"]
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
