"""Who this gateway is and how it reaches the broker (written by `telemon gateway provision`).

Its PHG identity is an EUI-64 system id (issue 19, :mod:`telemon.system_id`): provisioned, or
else derived once from the Bluetooth adapter's address and written here, so that it stays the
same when the adapter later reports another (a bumble radio without a key store, a new dongle).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from telemon.mqtt import BrokerAddress
from telemon.observation import Identifier
from telemon.system_id import SystemId, from_eui48

IDENTITY_FILE = "identity.json"


class GatewayIdentity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway_id: Identifier
    patient_id: Identifier
    mqtt_url: str  # without credentials: they are the fields below
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = None
    system_id: SystemId | None = None

    def with_adapter_address(self, address: str) -> GatewayIdentity:
        """This identity with the system id derived from the adapter's 48-bit ``address``."""
        return self.model_copy(update={"system_id": from_eui48(address)})

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
        data = self.model_dump(mode="json")
        if self.mqtt_password is not None:
            data["mqtt_password"] = self.mqtt_password.get_secret_value()
        write_private_json(path, data)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> GatewayIdentity:
        path = state_dir / IDENTITY_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no gateway identity in {state_dir}: run `telemon gateway provision` first"
            ) from None


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
