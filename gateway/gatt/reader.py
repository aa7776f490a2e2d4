"""A bounds-checked cursor over a characteristic value.

Every read names the field it is for, so running out of bytes becomes a :class:`DecodeError`
that says which field, at which offset, and (for optional fields) which flag promised it.
"""

from __future__ import annotations

from gateway.gatt.errors import DecodeError

# ATT_MTU may be larger, but no attribute value exceeds 512 octets (Core Spec Vol 3 Part F §3.2.9).
MAX_ATTRIBUTE_LENGTH = 512


class ByteReader:
    __slots__ = ("_offset", "_payload", "characteristic")

    def __init__(self, characteristic: str, payload: bytes | bytearray | memoryview) -> None:
        self.characteristic = characteristic
        self._payload = bytes(payload)
        self._offset = 0
        if len(self._payload) > MAX_ATTRIBUTE_LENGTH:
            raise self.error(
                f"payload of {len(self._payload)} bytes is longer than the "
                f"{MAX_ATTRIBUTE_LENGTH}-byte maximum of an attribute value",
                offset=MAX_ATTRIBUTE_LENGTH,
            )

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def remaining(self) -> int:
        return len(self._payload) - self._offset

    def error(self, reason: str, *, offset: int | None = None) -> DecodeError:
        return DecodeError(self.characteristic, self._offset if offset is None else offset, reason)

    def take(self, size: int, field: str, *, promised_by: str | None = None) -> bytes:
        if size > self.remaining:
            have = f"only {self.remaining} of its {size} bytes are present"
            if promised_by:
                raise self.error(f"{promised_by} promises field {field!r}, but {have}")
            raise self.error(f"field {field!r} is truncated: {have}")
        chunk = self._payload[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def uint(self, size: int, field: str, *, promised_by: str | None = None) -> int:
        return int.from_bytes(self.take(size, field, promised_by=promised_by), "little")

    def rest(self) -> bytes:
        chunk = self._payload[self._offset :]
        self._offset = len(self._payload)
        return chunk

    def expect_end(self) -> None:
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected trailing byte(s) after the last field")
