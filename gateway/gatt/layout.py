"""Flag-driven record layouts: one table per characteristic, one engine for all of them.

Most health measurements are a Flags field followed by fields in a fixed order, some present only
when a flag bit says so. A :class:`Layout` lists those fields as data; :meth:`Layout.decode` and
:meth:`Layout.encode` walk the same table, so decoder and encoder cannot disagree on the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.gatt.errors import DecodeError, EncodeError, InvalidField
from gateway.gatt.fields import Codec
from gateway.gatt.reader import ByteReader


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    codec: Codec[Any]
    present_if: int | None = None  # the Flags bit that announces this optional field


@dataclass(frozen=True, slots=True)
class Wire:
    """The fields of one decoded value, before the profile gives them meaning."""

    characteristic: str
    flags: int
    values: Mapping[str, Any]  # absent optional fields are None
    offsets: Mapping[str, int]

    def error(self, field: str, reason: str) -> DecodeError:
        return DecodeError(self.characteristic, self.offsets.get(field, 0), f"{field}: {reason}")


@dataclass(frozen=True, slots=True)
class Layout:
    characteristic: str
    fields: tuple[Field, ...]
    # Flag bits with a meaning of their own (units, "clock not set"...) that announce no field.
    semantic_flags: int = 0
    flags_size: int = 1

    @property
    def reserved_flags(self) -> int:
        announced = 0
        for field in self.fields:
            announced |= field.present_if or 0
        return ((1 << (8 * self.flags_size)) - 1) & ~(announced | self.semantic_flags)

    def decode(self, payload: bytes | bytearray | memoryview) -> Wire:
        reader = ByteReader(self.characteristic, payload)
        flags = reader.uint(self.flags_size, "flags")
        if flags & self.reserved_flags:
            # An RFU flag may announce a field from a later specification whose position we
            # cannot know, so everything after it would be misread.
            raise reader.error(
                f"flags 0x{flags:02x} set reserved bits 0x{flags & self.reserved_flags:02x}",
                offset=0,
            )
        values: dict[str, Any] = {}
        offsets: dict[str, int] = {}
        for field in self.fields:
            if field.present_if is not None and not flags & field.present_if:
                values[field.name] = None
                continue
            promised_by = (
                f"flags bit {field.present_if.bit_length() - 1}" if field.present_if else None
            )
            offsets[field.name] = reader.offset
            raw = reader.take(field.codec.size, field.name, promised_by=promised_by)
            try:
                values[field.name] = field.codec.unpack(raw)
            except InvalidField as exc:
                raise DecodeError(
                    self.characteristic, offsets[field.name], f"field {field.name!r}: {exc}"
                ) from None
        reader.expect_end()
        return Wire(self.characteristic, flags, values, offsets)

    def encode(self, values: Mapping[str, Any], flags: int = 0) -> bytes:
        if flags & ~self.semantic_flags:
            raise EncodeError(f"{self.characteristic}: flags 0x{flags:02x} are not semantic flags")
        presence: dict[int, bool] = {}
        for field in self.fields:
            present = values.get(field.name) is not None
            if field.present_if is None:
                if not present:
                    raise EncodeError(f"{self.characteristic}: {field.name} is mandatory")
                continue
            if presence.setdefault(field.present_if, present) != present:
                together = [f.name for f in self.fields if f.present_if == field.present_if]
                raise EncodeError(
                    f"{self.characteristic}: {', '.join(together)} are present together or not"
                )
            if present:
                flags |= field.present_if
        body = [
            field.codec.pack(values[field.name])
            for field in self.fields
            if values.get(field.name) is not None
        ]
        return flags.to_bytes(self.flags_size, "little") + b"".join(body)
