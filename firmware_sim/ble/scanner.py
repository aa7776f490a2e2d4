"""`BumbleScanner`: bleak's scanner interface over a bumble central."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from bleak.backends.scanner import AdvertisementDataCallback, BaseBleakScanner
from bumble import hci
from bumble.device import Advertisement

from .advertisement import advertisement_data
from .radio import Central, Radio, get_central

__all__ = ["BumbleDeviceDetails", "BumbleScanner"]


@dataclass(frozen=True, slots=True)
class BumbleDeviceDetails:
    """`BLEDevice.details` for devices found by `BumbleScanner`.

    Keeps what a connect needs and a bare address string lacks: the address type,
    and the radio the device was heard on.
    """

    address: hci.Address
    central: Central


class BumbleScanner(BaseBleakScanner):
    """Scan for LE advertisements through a bumble central.

    Use it as ``BleakScanner(backend=BumbleScanner)``; it scans on the default radio
    (see `firmware_sim.ble.radio.default_radio`) unless bound with `bound_to` or given
    ``radio=``.
    """

    radio: ClassVar[Radio | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        radio: Radio | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode == "active"
        self._radio = radio if radio is not None else type(self).radio
        self._central: Central | None = None

    @classmethod
    def bound_to(cls, radio: Radio) -> type[BumbleScanner]:
        """This backend fixed to ``radio``, for passing as ``BleakScanner(backend=...)``."""
        return type(cls.__name__, (cls,), {"radio": radio, "__module__": cls.__module__})

    async def start(self) -> None:
        self.seen_devices = {}
        if self._central is not None:
            return
        self._central = central = await get_central(self._radio)
        try:
            await central.add_scan_listener(self._on_advertisement, active=self._active)
        except BaseException:
            self._central = None
            raise

    async def stop(self) -> None:
        central, self._central = self._central, None
        if central is not None:
            await central.remove_scan_listener(self._on_advertisement)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        central = self._central
        if central is None:
            return
        data = advertisement_data(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = advertisement.address.to_string(with_type_qualifier=False)
        # Like BlueZ, remember a name heard earlier when a later packet omits it.
        name = data.local_name
        if name is None and address in self.seen_devices:
            name = self.seen_devices[address][0].name
        device = self.create_or_update_device(
            key=address,
            address=address,
            name=name,
            details=BumbleDeviceDetails(advertisement.address, central),
            adv=data,
        )
        self.call_detection_callbacks(device, data)
