"""Codecs for devices that deviate from their standard profile, or speak a protocol of their own.

One module per device family, each pure like the standard profiles beside it: a record dataclass
with ``encode()`` (the simulated devices speak these bytes), a ``decode_*`` that raises
:class:`~gateway.gatt.DecodeError` on malformed bytes, and an ``interpret_*`` giving the same
:class:`~gateway.gatt.Decoded` as ``gateway.gatt.decode_all``. Which device uses which codec is
``gateway.quirks``' table; the byte layouts and their sources are in docs/devices/.
"""
