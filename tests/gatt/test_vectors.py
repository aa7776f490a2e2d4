"""Byte vectors written by hand from the specifications, decoded and re-encoded.

Sources: the GATT Specification Supplement (GSS) entry of each characteristic, and the service specs
(PLXS v1.0.1, BLS v1.1, GLS v1.0.1, HTS v1.0, WSS v1.0, BAS v1.1, DIS v1.1). Multi-byte fields
are little-endian (GSS); SFLOAT is 4-bit exponent + 12-bit mantissa, FLOAT 8 + 24.
"""

from datetime import datetime

import pytest

from gateway.gatt import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    DecodeError,
    GattDateTime,
    GlucoseHealth,
    GlucoseMeasurement,
    GlucoseTester,
    GlucoseType,
    GlucoseUnit,
    IntermediateCuffPressure,
    PlxMeasurementStatus,
    PressureUnit,
    RacpOpCode,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    SampleLocation,
    SpecialValue,
    decode,
    decode_all,
)
from telemon.metrics import to_canonical


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def by_metric(readings):
    return {reading.metric: reading for reading in readings}


# --- Blood Pressure Measurement 0x2A35 (BLS, GSS) ---------------------------------

# flags 0x1E: mmHg, time stamp, pulse rate, user id, measurement status (bits 1-4)
# systolic 120 (0x0078), diastolic 80 (0x0050), MAP 93 (0x005D), 2024-03-15 08:30:00,
# pulse 72 (0x0048), user 1, status 0x0004 (irregular pulse, bit 2)
BP_FULL = h("1E 7800 5000 5D00 E807 03 0F 08 1E 00 4800 01 0400")


def test_blood_pressure_all_fields():
    readings = by_metric(decode("2a35", BP_FULL))
    when = datetime(2024, 3, 15, 8, 30)
    assert {m: r.value for m, r in readings.items()} == {
        "systolic": 120.0,
        "diastolic": 80.0,
        "mean_arterial_pressure": 93.0,
        "pulse_rate": 72.0,
    }
    assert all(r.measured_at == when for r in readings.values())
    assert all(r.flags == ("irregular_pulse",) for r in readings.values())
    assert readings["systolic"].unit == "mm[Hg]"
    assert readings["systolic"].context == {"user_id": "1"}
    assert readings["pulse_rate"].context == {"user_id": "1", "pulse_source": "cuff"}


def test_blood_pressure_vector_re_encodes_byte_exactly():
    record = decode_all("2A35", BP_FULL).record
    assert record == BloodPressureMeasurement(
        120.0,
        80.0,
        93.0,
        PressureUnit.MMHG,
        GattDateTime(2024, 3, 15, 8, 30, 0),
        72.0,
        1,
        BloodPressureStatus.IRREGULAR_PULSE,
    )
    assert record.encode() == BP_FULL


def test_blood_pressure_kpa_is_converted_to_mmhg():
    # flags 0x01 (kPa); 16.0 kPa = 160e-1 (0xF0A0), 10.7 = 107e-1 (0xF06B), 12.5 = 125e-1 (0xF07D)
    readings = by_metric(decode("0x2a35", h("01 A0F0 6BF0 7DF0")))
    assert readings["systolic"].value == pytest.approx(120.01, abs=0.01)
    assert readings["diastolic"].value == pytest.approx(to_canonical("diastolic", 10.7, "kPa"))
    assert readings["systolic"].measured_at is None


def test_blood_pressure_pulse_range_flags_only_the_pulse():
    # flags 0x14 (pulse, status); pulse 110 (0x006E); status 0x0008: range 1 = above upper limit
    readings = by_metric(decode("2a35", h("14 7800 5000 5D00 6E00 0800")))
    assert readings["pulse_rate"].flags == ("pulse_above_range",)
    assert readings["systolic"].flags == ()


def test_blood_pressure_unknown_user_255_is_not_context():
    readings = decode("2a35", h("08 7800 5000 5D00 FF"))
    assert all("user_id" not in r.context for r in readings)


def test_blood_pressure_nan_map_is_skipped():
    decoded = decode_all("2a35", h("00 7800 5000 FF07"))
    assert {r.metric for r in decoded.readings} == {"systolic", "diastolic"}
    assert [s.field for s in decoded.skipped] == ["mean_arterial_pressure"]
    assert "NaN" in decoded.skipped[0].reason


def test_intermediate_cuff_pressure_decodes_without_readings():
    # BLS, Intermediate Cuff Pressure: the current cuff pressure in the systolic position,
    # diastolic and MAP NaN (0x07FF)
    decoded = decode_all("00002a36-0000-1000-8000-00805f9b34fb", h("00 9600 FF07 FF07"))
    assert decoded.readings == () and decoded.skipped == ()
    assert decoded.record == IntermediateCuffPressure(150.0)
    assert decoded.record.encode() == h("00 9600 FF07 FF07")


# --- PLX Spot-Check 0x2A5E and Continuous 0x2A5F (PLXS) ---------------------------


def test_plx_spot_check_minimal():
    # flags 0x00, SpO2 97 (0x0061), PR 72 (0x0048)
    readings = by_metric(decode("2a5e", h("00 6100 4800")))
    assert readings["spo2"].value == 97.0 and readings["spo2"].unit == "%"
    assert readings["pulse_rate"].value == 72.0
    assert readings["pulse_rate"].context["pulse_source"] == "oximeter"


def test_plx_spot_check_all_fields():
    # flags 0x0F: timestamp, measurement status, device and sensor status, PAI
    # SpO2 98, PR 60, 2023-12-01 07:05:09, status 0x0200 (data from measurement storage, bit 9),
    # device status 0x000020 (low perfusion, bit 5), PAI 5.2 % = 52e-1 (0xF034)
    payload = h("0F 6200 3C00 E707 0C 01 07 05 09 0002 200000 34F0")
    readings = by_metric(decode("2a5e", payload))
    spo2 = readings["spo2"]
    assert spo2.value == 98.0
    assert spo2.measured_at == datetime(2023, 12, 1, 7, 5, 9)
    assert spo2.flags == ("from_device_storage", "low_perfusion")
    assert spo2.context == {"plx_mode": "spot_check", "pulse_amplitude_index": "5.2"}
    assert decode_all("2a5e", payload).record.encode() == payload


def test_plx_spot_check_clock_not_set_drops_the_timestamp():
    # flags 0x11: timestamp present, bit 4 "device clock is not set"
    decoded = decode_all("2a5e", h("11 6100 4800 D007 01 01 00 00 00"))
    assert all(r.measured_at is None for r in decoded.readings)
    assert [s.field for s in decoded.skipped] == ["timestamp"]


def test_plx_continuous_fast_and_slow_go_to_context():
    # flags 0x03: SpO2PR-Fast and -Slow; normal 96/75, fast 95/76, slow 97/74
    readings = by_metric(decode("2a5f", h("03 6000 4B00 5F00 4C00 6100 4A00")))
    assert readings["spo2"].value == 96.0 and readings["pulse_rate"].value == 75.0
    assert readings["spo2"].context == {
        "plx_mode": "continuous",
        "spo2_fast": "95",
        "pulse_rate_fast": "76",
        "spo2_slow": "97",
        "pulse_rate_slow": "74",
    }


def test_plx_nan_spo2_yields_only_the_pulse():
    decoded = decode_all("2a5f", h("00 FF07 4800"))
    assert [r.metric for r in decoded.readings] == ["pulse_rate"]
    assert decoded.skipped[0].field == "spo2"


def test_plx_measurement_status_unavailable_is_flagged():
    # flags 0x04 (continuous: measurement status), status 0x2000 (measurement unavailable, bit 13)
    decoded = decode_all("2a5f", h("04 6000 4B00 0020"))
    assert decoded.record.measurement_status == PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE
    assert decoded.readings[0].flags == ("measurement_unavailable",)


# --- Glucose Measurement 0x2A18 and Context 0x2A34 (GLS, GSS) ----------------------

BASE_TIME = "E807 01 0A 07 1E 00"  # 2024-01-10 07:30:00


def test_glucose_kg_per_l_with_time_offset():
    # flags 0x03: time offset, concentration+type/location (kg/L); seq 1; offset -60 min (0xFFC4)
    # 95 mg/dL = 0.00095 kg/L = 950e-6 (exponent -6 = 0xA: 0xA3B6); type 1 capillary whole
    # blood (low nibble), location 1 finger (high nibble)
    payload = h(f"03 0100 {BASE_TIME} C4FF B6A3 11")
    (reading,) = decode("2a18", payload)
    assert reading.metric == "glucose" and reading.unit == "mg/dL"
    assert reading.value == pytest.approx(95.0)
    assert reading.measured_at == datetime(2024, 1, 10, 6, 30)
    assert reading.context == {
        "sequence_number": "1",
        "glucose_type": "capillary_whole_blood",
        "sample_location": "finger",
    }
    record = decode_all("2a18", payload).record
    assert record == GlucoseMeasurement(
        1,
        GattDateTime(2024, 1, 10, 7, 30, 0),
        -60,
        0.00095,
        GlucoseUnit.KG_PER_L,
        GlucoseType.CAPILLARY_WHOLE_BLOOD,
        SampleLocation.FINGER,
    )
    # The encoder writes 0.00095 as 95e-5, the coarsest exact exponent: same value, other bytes.
    assert record.encode() == h(f"03 0100 {BASE_TIME} C4FF 5FB0 11")
    assert decode_all("2a18", record.encode()).record == record


def test_glucose_mol_per_l():
    # flags 0x06: concentration, units mol/L; 5.5 mmol/L = 55e-4 mol/L (0xC037); type 2
    # capillary plasma, location 2 alternate site test
    (reading,) = decode("2a18", h(f"06 0200 {BASE_TIME} 37C0 22"))
    assert reading.value == pytest.approx(5.5 * 18.0156)
    assert reading.context["sample_location"] == "alternate_site_test"


def test_glucose_sensor_status_and_context_follows():
    # flags 0x1A: concentration, status, context follows; status 0x0021 (battery low, result
    # above range)
    decoded = decode_all("2a18", h(f"1A 0300 {BASE_TIME} B6A3 11 2100"))
    assert decoded.record.context_follows
    assert decoded.readings[0].flags == ("battery_low", "result_above_range")


def test_glucose_without_concentration_has_no_reading():
    decoded = decode_all("2a18", h(f"08 0400 {BASE_TIME} 0004"))  # status only: strip error
    assert decoded.readings == ()
    assert decoded.record.sequence_number == 4


def test_glucose_context_all_fields():
    # flags 0x5F: carbohydrate, meal, tester-health, exercise, medication (kg), HbA1c
    # seq 1; carbohydrate 1 breakfast, 50 g = 50e-3 kg (0xD032); meal 1 preprandial;
    # tester 1 self (low nibble), health 5 no health issues (high nibble) = 0x51;
    # exercise 1800 s (0x0708), 50 %; medication 1 rapid-acting insulin, 4 mg = 4e-6 kg (0xA004);
    # HbA1c 6.5 % = 65e-1 (0xF041)
    payload = h("5F 0100 01 32D0 01 51 0807 32 01 04A0 41F0")
    decoded = decode_all("2a34", payload)
    assert decoded.readings == ()
    context = decoded.record
    assert (context.tester, context.health) == (
        GlucoseTester.SELF,
        GlucoseHealth.NO_HEALTH_ISSUES,
    )
    assert context.as_context() == {
        "meal": "preprandial",
        "carbohydrate_id": "breakfast",
        "tester": "self",
        "health": "no_health_issues",
        "medication_id": "rapid_acting_insulin",
        "carbohydrate_g": "50",
        "medication_mg": "4",
        "hba1c_pct": "6.5",
        "exercise_duration_s": "1800",
        "exercise_intensity_pct": "50",
    }
    # 50e-3 kg is re-encoded as 5e-2 (0xE005): the same value at the coarsest exact exponent.
    assert context.encode() == h("5F 0100 01 05E0 01 51 0807 32 01 04A0 41F0")


def test_glucose_context_medication_in_liters_and_extended_flags():
    # flags 0xB0: medication, units liters (bit 5), extended flags present (bit 7, value 0);
    # medication 4 long-acting insulin, 0.2 mL = 2e-4 L (0xC002)
    context = decode_all("2a34", h("B0 0700 00 04 02C0")).record
    assert context.extended_flags == 0
    assert context.as_context()["medication_ml"] == "0.2"


# --- Record Access Control Point 0x2A52 (GLS) -----------------------------------


@pytest.mark.parametrize(
    ("request_", "payload"),
    [
        (RacpRequest.report_all(), "01 01"),
        (RacpRequest.report_from(5), "01 03 01 0500"),  # >=, filter type 1 sequence number
        (RacpRequest.count_all(), "04 01"),
        (RacpRequest.count_from(0x0102), "04 03 01 0201"),
        (RacpRequest.abort(), "03 00"),
    ],
)
def test_racp_requests(request_, payload):
    assert request_.encode() == h(payload)
    assert decode_all("2a52", h(payload)).record == request_


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("05 00 0A00", RacpRecordCount(10)),
        ("06 00 01 01", RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, RacpResponseValue.SUCCESS)),
        (
            "06 00 01 06",
            RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, RacpResponseValue.NO_RECORDS_FOUND),
        ),
        ("06 00 07 02", RacpResponse(7, RacpResponseValue.OP_CODE_NOT_SUPPORTED)),
    ],
)
def test_racp_responses(payload, message):
    decoded = decode_all("2a52", h(payload))
    assert decoded.record == message
    assert decoded.readings == ()
    assert message.encode() == h(payload)


# --- Health Thermometer 0x2A1C (HTS, GSS) ----------------------------------------


def test_temperature_celsius_with_time_and_type():
    # flags 0x06: time stamp, temperature type; 36.6 = 366e-1 (FLOAT 0xFF00016E);
    # 2024-02-29 12:00:00; type 1 armpit
    payload = h("06 6E0100FF E807 02 1D 0C 00 00 01")
    (reading,) = decode("2a1c", payload)
    assert reading.value == 36.6 and reading.unit == "Cel"
    assert reading.measured_at == datetime(2024, 2, 29, 12, 0)
    assert reading.context == {"temperature_type": "armpit"}
    assert decode_all("2a1c", payload).record.encode() == payload


def test_temperature_fahrenheit_is_converted():
    # flags 0x01: Fahrenheit; 98.6 = 986e-1 (0xFF0003DA)
    (reading,) = decode("2a1c", h("01 DA0300FF"))
    assert reading.value == pytest.approx(37.0)


def test_temperature_nan_is_skipped():
    decoded = decode_all("2a1c", h("00 FFFF7F00"))
    assert decoded.readings == ()
    assert decoded.record.temperature is SpecialValue.NAN


def test_temperature_type_characteristic():
    assert decode_all("2a1d", h("06")).record.name == "MOUTH"


# --- Weight Scale 0x2A9D (WSS, GSS) ----------------------------------------------


def test_weight_si_with_bmi_and_height():
    # flags 0x0E: time stamp, user id, BMI and height; 70.5 kg = 14100 x 0.005 (0x3714);
    # 2024-05-20 06:45:00; user 2; BMI 22.5 = 225 x 0.1; height 1.77 m = 1770 x 0.001
    payload = h("0E 1437 E807 05 14 06 2D 00 02 E100 EA06")
    (reading,) = decode("2a9d", payload)
    assert reading.metric == "body_weight" and reading.value == 70.5 and reading.unit == "kg"
    assert reading.context == {"user_id": "2", "bmi": "22.5", "height": "1.77", "height_unit": "m"}
    assert reading.measured_at == datetime(2024, 5, 20, 6, 45)
    assert decode_all("2a9d", payload).record.encode() == payload


def test_weight_imperial():
    # flags 0x01: imperial; 155.4 lb = 15540 x 0.01 (0x3CB4)
    (reading,) = decode("2a9d", h("01 B43C"))
    assert reading.value == pytest.approx(155.4 * 0.45359237)


def test_weight_measurement_unsuccessful():
    decoded = decode_all("2a9d", h("00 FFFF"))
    assert decoded.readings == ()
    assert decoded.skipped[0].field == "weight"


# --- Battery Level 0x2A19 and Device Information strings -------------------------------------


def test_battery_level():
    assert decode_all("2a19", h("64")).record.percent == 100


def test_device_information_string_tolerates_nul_padding():
    decoded = decode_all("2a29", b"Acme Medical\x00\x00")
    assert decoded.record.field == "manufacturer_name"
    assert decoded.record.value == "Acme Medical"
    assert decoded.characteristic == "manufacturer_name_string"


@pytest.mark.parametrize(
    ("uuid", "field"),
    [
        ("2a24", "model_number"),
        ("2a25", "serial_number"),
        ("2a26", "firmware_revision"),
        ("2a27", "hardware_revision"),
        ("2a28", "software_revision"),
    ],
)
def test_device_information_fields(uuid, field):
    assert decode_all(uuid, "v1.2 ü".encode()).record.field == field


def test_system_id_is_the_eui64_in_reading_order():
    # Device Information's example: OUI 0x123456, company-assigned 0x9ABCDE from a Bluetooth
    # address, so the manufacturer identifier 0xFFFE9ABCDE; a little-endian uint64 on the wire.
    decoded = decode_all("2a23", h("DE BC 9A FE FF 56 34 12"))
    assert decoded.record.field == "system_id"
    assert decoded.record.value == "12-34-56-FF-FE-9A-BC-DE"
    assert decoded.characteristic == "system_id"
    assert decoded.record.encode() == h("DE BC 9A FE FF 56 34 12")
    with pytest.raises(DecodeError):
        decode_all("2a23", h("DE BC 9A FE FF 56 34"))


def test_date_not_known_gives_no_timestamp():
    # GSS Date Time: year 0 means "not known"
    decoded = decode_all("2a1c", h("02 6E0100FF 0000 01 01 00 00 00"))
    assert decoded.readings[0].measured_at is None
    assert decoded.skipped[0].field == "timestamp"
