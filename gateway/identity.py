"""Who this gateway is and how it reaches the broker (written by `telemon gateway provision`).

Its PHG identity is an EUI-64 system id (issue 19, :mod:`telemon.system_id`): provisioned, or
else derived once from the Bluetooth adapter's address and written here, so that it stays the
same when the adapter later reports another (a bumble radio without a key store, a new dongle).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from telemon.checks import InvalidValue, Rule, check_fields, from_json, optional, text
from telemon.mqtt import BrokerAddress
from telemon.observation import ID_PATTERN
from telemon.system_id import SYSTEM_ID_PATTERN, from_eui48

IDENTITY_FILE = "identity.json"
T = TypeVar("T")


class Secret:
    """A password that stays out of reprs and logs; ``get_secret_value()`` says it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayIdentity:
    gateway_id: str
    patient_id: str
    mqtt_url: str  # without credentials: they are the fields below
    mqtt_password: Secret | None = None
    mqtt_ca_file: Path | None = None
    system_id: str | None = None

    def __post_init__(self) -> None:
        check_fields(self, _RULES)

    def with_adapter_address(self, address: str) -> GatewayIdentity:
        """This identity with the system id derived from the adapter's 48-bit ``address``."""
        return replace(self, system_id=from_eui48(address))

    def broker(self) -> BrokerAddress:
        """The broker address, logging in as this gateway (its username is its id)."""
        password = self.mqtt_password.get_secret_value() if self.mqtt_password else None
        return replace(
            BrokerAddress.parse(self.mqtt_url), username=self.gateway_id, password=password
        )

    def save(self, state_dir: Path) -> Path:
        """Write atomically, readable by the owner only (it holds a credential)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / IDENTITY_FILE
        data = {
            "gateway_id": self.gateway_id,
            "patient_id": self.patient_id,
            "mqtt_url": self.mqtt_url,
            "mqtt_password": self.mqtt_password and self.mqtt_password.get_secret_value(),
            "mqtt_ca_file": self.mqtt_ca_file and str(self.mqtt_ca_file),
            "system_id": self.system_id,
        }
        write_private_json(path, data)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> GatewayIdentity:
        """The saved identity; :class:`telemon.checks.InvalidValue` says what is wrong in it."""
        path = state_dir / IDENTITY_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no gateway identity in {state_dir}: run `telemon gateway provision` first"
            ) from None
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise InvalidValue(cls.__name__, [("(root)", f"{path} is not JSON: {error}")]) from None
        return from_json(cls, data)


_identifier = text(pattern=ID_PATTERN)
_RULES: dict[str, Rule] = {
    "gateway_id": _identifier,
    "patient_id": _identifier,
    "mqtt_url": text(),
    "mqtt_password": optional(lambda value: _as(Secret, value)),
    "mqtt_ca_file": optional(lambda value: _as(Path, value)),
    "system_id": optional(text(pattern=SYSTEM_ID_PATTERN)),
}


def _as(kind: type[T], value: Any) -> T:
    """``value`` as ``kind``, made from its text (as the identity file holds it)."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return kind(value)  # type: ignore[call-arg]


def write_private_json(path: Path, data: object) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600, fsynced (survives a power cut)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
