"""Who each simulated device says it is: advertised name, appearance, Device Information.

The makes and models are fictional, but shaped like real ones (a model number in the name, a
per-unit suffix from the address) because the gateway's pairing UI and logs show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from telemon.device_kinds import DeviceKind
from telemon.system_id import from_eui48

# Medisim's (fictional) company id: locally administered, so it is no real maker's OUI.
MEDISIM_OUI = "02:4D:53"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    manufacturer: str
    model: str
    firmware_revision: str
    hardware_revision: str
    appearance: int  # GAP Appearance (Assigned Numbers, appearance values)
    service_uuid: int | None  # the health profile's primary service, advertised (None: none)
    fixed_name: str | None = None  # a model that advertises the same name on every unit
    has_system_id: bool = True  # exposes Device Information's System ID (many BLE devices do not)

    def name(self, address: str) -> str:
        if self.fixed_name is not None:
            return self.fixed_name
        # Real devices append part of their address so that two units can be told apart.
        return f"{self.model} {address.replace(':', '')[-4:]}"

    def serial_number(self, address: str) -> str:
        return f"{self.model.split('-')[-1]}{address.replace(':', '')[-8:]}"

    def system_id(self, address: str) -> str | None:
        """The EUI-64 a unit reports: the company's OUI and the address's last three bytes,
        made an EUI-64 as Device Information says (the OUI, FF-FE, the rest)."""
        if not self.has_system_id:
            return None
        return from_eui48(f"{MEDISIM_OUI}:{address.upper()[-8:]}")


IDENTITIES: MappingProxyType[DeviceKind, DeviceIdentity] = MappingProxyType(
    {
        DeviceKind.PULSE_OXIMETER: DeviceIdentity(
            "Medisim", "MS-PO60", "2.1.4", "B", appearance=0x0C41, service_uuid=0x1822
        ),
        DeviceKind.BLOOD_PRESSURE: DeviceIdentity(
            "Medisim", "MS-BP651", "1.7.0", "C", appearance=0x0381, service_uuid=0x1810
        ),
        DeviceKind.GLUCOMETER: DeviceIdentity(
            "Medisim", "MS-GL50", "3.0.2", "A", appearance=0x0400, service_uuid=0x1808
        ),
        DeviceKind.THERMOMETER: DeviceIdentity(
            "Medisim",
            "MS-FT95",
            "1.2.1",
            "A",
            appearance=0x0301,
            service_uuid=0x1809,
            has_system_id=False,
        ),
        DeviceKind.WEIGHT_SCALE: DeviceIdentity(
            "Medisim", "MS-BS444", "1.0.9", "D", appearance=0x0C80, service_uuid=0x181D
        ),
    }
)
