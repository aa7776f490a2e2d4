"""The pairing table: the devices assigned to this patient. Unknown devices are ignored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gateway.identity import write_private_json
from telemon.payload import GatewayConfig, PairedDevice

PAIRING_FILE = "pairing.json"


@dataclass(frozen=True, slots=True)
class PairingTable:
    revision: int = 0
    devices: tuple[PairedDevice, ...] = field(default_factory=tuple)

    def find(self, address: str) -> PairedDevice | None:
        wanted = address.upper()
        return next((d for d in self.devices if d.address.upper() == wanted), None)

    def with_device(self, device: PairedDevice) -> PairingTable:
        others = tuple(d for d in self.devices if d.address.upper() != device.address.upper())
        return PairingTable(self.revision, (*others, device))

    def save(self, state_dir: Path) -> None:
        write_private_json(
            state_dir / PAIRING_FILE,
            {
                "revision": self.revision,
                "devices": [d.wire() for d in self.devices],
            },
        )

    @classmethod
    def load(cls, state_dir: Path) -> PairingTable:
        try:
            data = json.loads((state_dir / PAIRING_FILE).read_text())
        except FileNotFoundError:
            return cls()
        return cls(data["revision"], tuple(PairedDevice.from_wire(d) for d in data["devices"]))

    @classmethod
    def from_config(cls, config: GatewayConfig) -> PairingTable:
        return cls(config.revision, tuple(config.devices))
