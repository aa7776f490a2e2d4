"""A reading's stable identifier: the same record sent twice gets the same one (issue 19).

Devices that cannot delete what they store send every stored record again at each connection,
and a gateway reinstalled from scratch (empty outbox, sequence numbers from 1) has no memory of
what it sent before: ``(gateway, seq)`` then names a record already stored under another number.
The HL7 PHD IG (ObservationIdentifier) names a measurement instead by what the device said about
it: device id, patient id, the *device's* time stamp, type code, value and supplemental types,
joined with "-". Nothing the gateway decides enters it (not its clock correction, which may
differ between two connections, nor its receive time), so it is the same at every upload.

On the wire and in the store the identifier is the first 128 bits of the SHA-256 of that string,
32 lowercase hex digits: fixed-size for the database's unique key and free of the patient's
code, which the string contains. A reading without a device time stamp has no identifier: it
was measured during the connection, and two such readings with the same value are two readings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Final

IDENTIFIER_PATTERN: Final = r"^[0-9a-f]{32}$"
_SEPARATOR: Final = "-"
# Context a device sends that is no supplemental type of the measurement: a glucose meter's
# record number, which a reset meter gives again to other records (or another to the same one).
NOT_SUPPLEMENTAL: Final = frozenset({"sequence_number"})


def identifier_text(
    *,
    device_id: str,
    patient_id: str,
    device_time: str,
    type_code: str,
    value: float,
    supplemental: Iterable[str] = (),
) -> str:
    """The IG's identifier string: the fields joined with "-", supplemental types sorted.

    The IG writes the time stamp as seconds since 2000-01-01 with a zone/DST suffix; the
    device's own local ISO text is as stable and keeps the preimage readable.
    """
    return _SEPARATOR.join(
        (device_id, patient_id, device_time, type_code, repr(float(value)), *sorted(supplemental))
    )


def observation_identifier(
    *,
    device_id: str,
    patient_id: str,
    device_time: str | None,
    type_code: str,
    value: float,
    flags: Iterable[str] = (),
    context: Mapping[str, str] | None = None,
) -> str | None:
    """The identifier of a reading, or None when the device gave it no time stamp.

    ``flags`` and ``context`` must be the device's own (status bits, meal, sample type): never
    what the gateway adds, which may differ between two uploads of the same record.
    """
    if not device_time:
        return None
    supplemental = [
        *flags,
        *(f"{key}={val}" for key, val in (context or {}).items() if key not in NOT_SUPPLEMENTAL),
    ]
    text = identifier_text(
        device_id=device_id.upper(),
        patient_id=patient_id,
        device_time=device_time,
        type_code=type_code,
        value=value,
        supplemental=supplemental,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]
