"""What the HL7 Personal Health Device IG adds to a reading: the devices, the dedup identifier,
the device's measurement status and the coincident time stamp (docs/dashboard.md, "FHIR").

Pure functions over stored rows. Codes and mappings, with their sources: the PHD IG's Base and
Numeric Observation, PHD Device, PHG Device and Coincident Time Stamp profiles (HL7/phd,
input/pagecontent/*.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from telemon.system_id import NO_SYSTEM_ID

MDC = "urn:iso:std:iso:11073:10101"
PHD_PROFILE = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
GATEWAY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
DEVICE_ID_TYPES = "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers"
SYSTEM_ID = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
BLUETOOTH = "http://hl7.org/fhir/sid/eui-48/bluetooth"
GATEWAY_CODE = "urn:telemon:gateway"
MEASUREMENT_STATUS = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
# A BLE health device without Device Information's System ID has no EUI-64: the PHD Device
# profile says to enter NO_SYSTEM_ID and to identify the device by its transport address.
# The PHD IG's time stamp identifier counts seconds from this epoch.
PHD_EPOCH = datetime(2000, 1, 1)

# The device's measurement status, as our flags name its bits, mapped as the Base Observation
# profile's table says: (element, code). dataAbsentReason replaces the value; of several, the
# first in this order wins.
STATUS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "invalid_measurement": ("dataAbsentReason", "error"),
        "measurement_unavailable": ("dataAbsentReason", "not-performed"),
        "measurement_ongoing": ("dataAbsentReason", "temp-unknown"),
        "questionable_measurement": ("interpretation", "questionable"),
        "calibration_ongoing": ("interpretation", "calibration-ongoing"),
        "validated_data": ("interpretation", "validated-data"),
        "early_estimate": ("interpretation", "early-indication"),
        "testing_data": ("security", "HTEST"),
        "demonstration_data": ("security", "HTEST"),
    }
)

# Device.specialization per device kind: MDC partition INFRA (8) * 2^16 + term code
# (PhdDeviceProfile.md, "System Type Spec List").
SPECIALIZATIONS: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "pulse_oximeter": (528388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
        "blood_pressure": (528391, "MDC_DEV_SPEC_PROFILE_BP"),
        "thermometer": (528392, "MDC_DEV_SPEC_PROFILE_TEMP"),
        "weight_scale": (528399, "MDC_DEV_SPEC_PROFILE_SCALE"),
        "glucometer": (528401, "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
    }
)
# The gateway keeps UTC with systemd-timesyncd (gateway.clock_check), an SNTP v4 client.
TIME_SYNC = (532228, "MDC_TIME_SYNC_SNTPV4330")


def phd_ref(device_id: int) -> str:
    return f"Device/phd-{device_id}"


def phg_ref(gateway_id: int) -> str:
    return f"Device/phg-{gateway_id}"


def eui(address: str) -> str:
    """A transport address as the IG writes it: hex bytes, upper case, joined by dashes."""
    return address.replace(":", "-").upper()


def _mdc(code: int, text: str) -> dict[str, Any]:
    return {"coding": [{"system": MDC, "code": str(code)}], "text": text}


def _id_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": DEVICE_ID_TYPES, "code": code}]}


def status_elements(flags: list[str] | None) -> dict[str, Any]:
    """dataAbsentReason, interpretation and meta.security for the device's status flags."""
    mapped = [STATUS[f] for f in STATUS if f in (flags or ())]
    out: dict[str, Any] = {}
    absent = [code for element, code in mapped if element == "dataAbsentReason"]
    if absent:
        out["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": absent[0]}]}
    interpretations = [code for element, code in mapped if element == "interpretation"]
    if interpretations:
        out["interpretation"] = [
            {"coding": [{"system": MEASUREMENT_STATUS, "code": code}]} for code in interpretations
        ]
    if any(element == "security" for element, _ in mapped):
        out["security"] = [{"system": ACT_REASON, "code": "HTEST"}]
    return out


def reported_timestamp(measured_at: datetime, time: Mapping[str, Any] | None) -> str:
    """The PHD's own time stamp as the IG's identifier encodes it: seconds since 2000-01-01
    of the device's clock, and its zone and DST offset in 15-minute units where the device
    sent one. Without the device's stamp (no time record, or gateway time), the stored UTC
    instant stands in."""
    stamp = (time or {}).get("device_time")
    if stamp and (time or {}).get("basis") != "gateway":
        seconds = (datetime.fromisoformat(stamp).replace(tzinfo=None) - PHD_EPOCH).total_seconds()
    else:
        seconds = (measured_at.astimezone(UTC).replace(tzinfo=None) - PHD_EPOCH).total_seconds()
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    zone, dst = (time or {}).get("device_zone_min"), (time or {}).get("device_dst_min")
    if zone is not None:
        text += f"{(zone + (dst or 0)) // 15:+d}"
    return text


def observation_identifier(
    *,
    device_address: str | None,
    patient_code: str,
    patient_system: str,
    type_code: str,
    unit: str,
    value: str,
    measured_at: datetime,
    time: Mapping[str, Any] | None,
) -> str:
    """The PHD Observation identifier (Numeric Observation profile): device, patient, type,
    value, units and the PHD's time stamp joined by dashes (a compound's values joined by dashes
    too, its type the compound's), the same however often a device
    re-sends a stored reading. The Bluetooth address names the device: most BLE devices have
    no EUI-64 (the IG's 00-00-… would make two devices' readings alike), and one learnt later
    from Device Information would change the identifier of every reading already sent."""
    device = eui(device_address) if device_address else NO_SYSTEM_ID
    parts = (
        device,
        f"{patient_code}-{patient_system}",
        type_code,
        value,
        unit,
        reported_timestamp(measured_at, time),
    )
    return "-".join(parts)


def coincident_time_stamp(
    *,
    patient_id: int,
    device_id: int | None,
    gateway_id: int,
    received_at: datetime | None,
    time: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The Coincident Time Stamp Observation a reading's effective time derives from: the
    gateway's time (effective) and the device's clock at that moment (value), as the gateway
    measured the offset. None when the device sent no time stamp (the gateway's own time
    was used), or for readings stored before time records existed."""
    if not time or time.get("basis") == "gateway" or received_at is None:
        return None
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "cts",
        "meta": {"profile": [PHD_PROFILE + "PhdCoincidentTimeStampObservation"]},
        "extension": [
            {"url": GATEWAY_EXTENSION, "valueReference": {"reference": phg_ref(gateway_id)}}
        ],
        "status": "final",
        "code": _mdc(67975, "MDC_ATTR_TIME_ABS: the device's absolute time clock"),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": received_at.isoformat(),
    }
    if device_id is not None:
        resource["device"] = {"reference": phd_ref(device_id)}
    offset_s = time.get("clock_offset_s")
    if offset_s is None:
        # A stamp whose clock was never read: the IG's time fault.
        resource["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "unknown"}]}
        return resource
    zone = timezone(timedelta(minutes=time.get("utc_offset_min") or 0))
    device_now = received_at + timedelta(seconds=offset_s)
    resource["valueDateTime"] = device_now.astimezone(zone).isoformat()
    return resource


def _system_id(value: str) -> dict[str, Any]:
    return {"system": SYSTEM_ID, "value": value, "type": _id_type("SYSID")}


def device_resource(row: Mapping[str, Any], patient_id: int) -> dict[str, Any]:
    """A home device as a PHD Device: its system id (the EUI-64 Device Information reported,
    else the IG's none), its Bluetooth address, model, serial, firmware and UDI where the kit
    recorded them or the device reported them."""
    identifiers: list[dict[str, Any]] = [
        _system_id(row.get("system_id") or NO_SYSTEM_ID),
        {"system": BLUETOOTH, "value": eui(row["address"]), "type": _id_type("BTMAC")},
    ]
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": f"phd-{row['id']}",
        "meta": {"profile": [PHD_PROFILE + "PhdDevice"]},
        "identifier": identifiers,
        "status": "inactive" if row["unpaired_at"] else "active",
        "type": _mdc(65573, "MDC_MOC_VMS_MDS_SIMP: Continua Personal Health Device"),
        "patient": {"reference": f"Patient/{patient_id}"},
    }
    code, name = SPECIALIZATIONS[row["kind"]]
    resource["specialization"] = [{"systemType": _mdc(code, name)}]
    if row["manufacturer"]:
        resource["manufacturer"] = row["manufacturer"]
    if row["model"]:
        resource["modelNumber"] = row["model"]
        resource["deviceName"] = [{"name": row["model"], "type": "model-name"}]
    if row["serial_number"]:
        resource["serialNumber"] = row["serial_number"]
    if row["firmware"]:
        resource["version"] = [
            {"type": _mdc(531976, "MDC_ID_PROD_SPEC_FW"), "value": row["firmware"]}
        ]
    if row["udi"]:
        resource["udiCarrier"] = [{"carrierHRF": row["udi"]}]
    return resource


def gateway_resource(row: Mapping[str, Any], patient_id: int | None) -> dict[str, Any]:
    """The patient's gateway as a PHG Device: its EUI-64 system id as the PHG profile wants it
    (from its status, issue 19), its code, its time synchronisation and software. A gateway
    that never reported a system id (older software) is named by its code alone."""
    identifiers: list[dict[str, Any]] = [{"system": GATEWAY_CODE, "value": row["code"]}]
    if row.get("system_id"):
        identifiers.insert(0, _system_id(row["system_id"]))
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": f"phg-{row['id']}",
        "meta": {"profile": [PHD_PROFILE + "PhgDevice"]},
        "identifier": identifiers,
        "status": "active" if row["patient_id"] == patient_id else "inactive",
        "type": _mdc(531981, "MDC_MOC_VMS_MDS_AHD: Continua Personal Health Gateway"),
        "property": [
            {
                "type": _mdc(68220, "MDC_TIME_SYNC_PROTOCOL"),
                "valueCode": [_mdc(*TIME_SYNC)],
            }
        ],
    }
    if row["software_version"]:
        resource["version"] = [
            {"type": _mdc(531975, "MDC_ID_PROD_SPEC_SW"), "value": row["software_version"]}
        ]
    if patient_id is not None:
        resource["patient"] = {"reference": f"Patient/{patient_id}"}
    return resource
