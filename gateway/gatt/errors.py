"""The two errors of the codec layer: one for bytes from a device, one for values from our code."""

from __future__ import annotations


class DecodeError(ValueError):
    """A characteristic value that does not follow its specification.

    ``characteristic`` names the characteristic (or the unrecognised UUID), ``offset`` is the byte
    where the problem sits and ``reason`` says what is wrong, so a log line is enough to reproduce
    the failure with the device's bytes.
    """

    def __init__(self, characteristic: str, offset: int, reason: str) -> None:
        super().__init__(f"{characteristic}: {reason} (byte offset {offset})")
        self.characteristic = characteristic
        self.offset = offset
        self.reason = reason


class EncodeError(ValueError):
    """A value that cannot be put on the wire (out of range, or inconsistent optional fields)."""


class InvalidField(ValueError):
    """Raised by field codecs, which know a value but not its place in the payload.

    The layout that called the codec turns it into a :class:`DecodeError` with the offset.
    """
