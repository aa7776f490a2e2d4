"""Real models that deviate from their standard profile (the rows of ``gateway.quirks``).

Each speaks its model's bytes, encoded with the codecs in ``gateway.gatt.quirks``; the byte
vectors in tests/quirks pin those codecs to the layouts in docs/devices/, so the simulator and
the gateway's decoder cannot agree on a layout no device sends.

- ``SimulatedBeurerBM85``: a Blood Pressure Service cuff whose measurement has the BM85's quirks.
- ``SimulatedContecCMS50D``: advertises as ``SpO208…``, silent until the central writes the
  real-time start command; then each sample is a notification of waveform frames and a values
  frame, or, with ``notification_size``, a byte stream cut every so many bytes wherever the cut
  falls (as the device's 20-byte notifications cut its frames), the rest sent with the next one.
- ``SimulatedBerryMed``: notifies BCI packets on its serial service as soon as subscribed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bumble.core import UUID
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from firmware_sim.devices.base import SimulatedDevice, uuid16
from firmware_sim.devices.blood_pressure import STATUS_FLAGS, SimulatedBloodPressureCuff
from firmware_sim.devices.identity import DeviceIdentity
from firmware_sim.devices.status_bits import status_bits
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import BloodPressureStatus, PressureUnit
from gateway.gatt.quirks import berrymed, contec
from gateway.gatt.quirks.beurer import Bm85Measurement
from telemon.device_kinds import DeviceKind

__all__ = ["MODEL_CLASSES", "SimulatedBerryMed", "SimulatedBeurerBM85", "SimulatedContecCMS50D"]

_Props = Characteristic.Properties
_PULSE_OXIMETER_APPEARANCE = 0x0C41
_BLOOD_PRESSURE_APPEARANCE = 0x0381
# Packets per notification: BCI streams about 100 packets a second, several to a notification;
# both fill the 20 bytes a notification carries at the default ATT MTU (Contec: 2 x 6 + 8).
BCI_PACKETS_PER_NOTIFICATION = 4
CONTEC_WAVEFORM_FRAMES = 2


def _value(measurement: SimulatedMeasurement, metric: str) -> float | None:
    value = measurement.values.get(metric)
    return None if value is None else float(value)


class SimulatedBeurerBM85(SimulatedBloodPressureCuff):
    model_identity = DeviceIdentity(
        "Beurer", "BM85", "1.0", "1", _BLOOD_PRESSURE_APPEARANCE, 0x1810, fixed_name="BM85"
    )

    def __init__(
        self, link: LocalLink, address: Any = None, *, user_flag: bool = False, **kwargs: Any
    ):
        self.user_flag = user_flag  # the BM85 sends the user byte whether or not it sets this
        kwargs.setdefault("user_id", 0)  # the BM85 numbers its users from 0
        super().__init__(link, address, **kwargs)

    def encode(self, measurement: SimulatedMeasurement) -> bytes:
        systolic = _value(measurement, "systolic")
        diastolic = _value(measurement, "diastolic")
        if systolic is None or diastolic is None:
            raise ValueError("a BM85 record always has systolic and diastolic pressure")
        return Bm85Measurement(
            systolic=systolic,
            diastolic=diastolic,
            mean_arterial_pressure=0.0,
            unit=PressureUnit.MMHG,
            timestamp=self.timestamp(measurement),
            pulse_rate=_value(measurement, "pulse_rate"),
            user_id=self.user_id,
            user_id_valid=self.user_flag,
            status=status_bits(measurement.flags, STATUS_FLAGS, BloodPressureStatus),
        ).encode()


class _StreamingOximeter(SimulatedDevice):
    """A finger oximeter without the Pulse Oximeter Service: it notifies a serial stream."""

    kind = DeviceKind.PULSE_OXIMETER
    stream: Characteristic

    @property
    def streaming(self) -> bool:
        return self.subscribed(self.stream, indicate=False)

    async def send(self, payload: bytes) -> bool:
        """One notification as the device sends it (also malformed bytes, for tests)."""
        return await self.notify(self.stream, payload) if self.streaming else False

    async def record(self, measurement: SimulatedMeasurement) -> None:
        """Notify ``measurement`` (a continuous sample) if the central is receiving."""
        self._check_kind(measurement)
        spo2 = _value(measurement, "spo2")
        pulse_rate = _value(measurement, "pulse_rate")
        await self.send(self.sample(spo2, pulse_rate))

    async def finger_out(self) -> bool:
        return await self.send(self.sample(None, None, finger_out=True))

    def sample(
        self, spo2: float | None, pulse_rate: float | None, *, finger_out: bool = False
    ) -> bytes:
        raise NotImplementedError


class SimulatedContecCMS50D(_StreamingOximeter):
    model_identity = DeviceIdentity(
        "Contec",
        "CMS50D-BT",
        "1.0",
        "1",
        _PULSE_OXIMETER_APPEARANCE,
        None,
        fixed_name=f"{contec.NAME_PREFIX}0971",
    )

    def __init__(self, *args: Any, notification_size: int | None = None, **kwargs: Any) -> None:
        self._started = False
        self.commands: list[bytes] = []  # what the central wrote, in order
        self.notification_size = notification_size  # None: one whole sample per notification
        self._unsent = b""  # the stream's bytes past the last whole notification
        super().__init__(*args, **kwargs)

    async def send(self, payload: bytes) -> bool:
        if self.notification_size is None:
            return await super().send(payload)
        if not self.streaming:
            return False
        stream, size = self._unsent + payload, self.notification_size
        cut = len(stream) - len(stream) % size
        self._unsent = stream[cut:]
        sent = True
        for at in range(0, cut, size):
            sent = await self.notify(self.stream, stream[at : at + size]) and sent
        return sent

    def _profile_services(self) -> Iterable[Service]:
        self.stream = self._characteristic(uuid16(contec.NOTIFY), _Props.NOTIFY)
        self.control = self._characteristic(
            uuid16(contec.CONTROL),
            _Props.WRITE | _Props.WRITE_WITHOUT_RESPONSE,
            CharacteristicValue(write=self._on_control),
        )
        return [Service(uuid16(contec.SERVICE), [self.stream, self.control])]

    def _on_control(self, _connection: Connection, value: bytes) -> None:
        self._touch()
        self.commands.append(bytes(value))
        if value == contec.START_REALTIME:
            self._started = True
        elif value == contec.STOP_REALTIME:
            self._started = False

    def _on_disconnected(self) -> None:
        self._started = False  # the next central asks again
        self._unsent = b""

    @property
    def streaming(self) -> bool:
        return self._started and super().streaming

    def sample(
        self, spo2: float | None, pulse_rate: float | None, *, finger_out: bool = False
    ) -> bytes:
        values = contec.ValuesFrame(
            spo2=contec.SPO2_INVALID if spo2 is None else round(spo2),
            pulse_rate=contec.PULSE_INVALID if pulse_rate is None else round(pulse_rate),
        )
        waves = tuple(
            contec.WaveformFrame(
                pleth=0 if finger_out else 40 + 20 * n, bar_graph=n, finger_out=finger_out
            )
            for n in range(CONTEC_WAVEFORM_FRAMES)
        )
        return contec.ContecNotification((*waves, values)).encode()

    async def send_waveform(self) -> bool:
        """A notification of waveform frames only: no values, so no reading."""
        frames = tuple(contec.WaveformFrame(pleth=50) for _ in range(CONTEC_WAVEFORM_FRAMES))
        return await self.send(contec.ContecNotification(frames).encode())


class SimulatedBerryMed(_StreamingOximeter):
    model_identity = DeviceIdentity(
        "BerryMed", "BM1000", "1.0", "1", _PULSE_OXIMETER_APPEARANCE, None, fixed_name="BerryMed"
    )

    def _profile_services(self) -> Iterable[Service]:
        self.stream = self._characteristic(UUID(berrymed.NOTIFY_UUID), _Props.NOTIFY)
        receive = self._characteristic(
            UUID(berrymed.WRITE_UUID),
            _Props.WRITE | _Props.WRITE_WITHOUT_RESPONSE,
            CharacteristicValue(write=lambda _connection, _value: None),
        )
        return [Service(UUID(berrymed.SERVICE_UUID), [self.stream, receive])]

    def sample(
        self, spo2: float | None, pulse_rate: float | None, *, finger_out: bool = False
    ) -> bytes:
        packets = tuple(
            berrymed.BciPacket(
                signal_strength=0 if finger_out else 8,
                pleth=0 if finger_out else 30 + 10 * n,
                no_finger=finger_out,
                pulse_rate=berrymed.PULSE_INVALID if pulse_rate is None else round(pulse_rate),
                spo2=berrymed.SPO2_INVALID if spo2 is None else round(spo2),
            )
            for n in range(BCI_PACKETS_PER_NOTIFICATION)
        )
        return berrymed.BciNotification(packets).encode()


MODEL_CLASSES: dict[str, type[SimulatedDevice]] = {
    "beurer_bm85": SimulatedBeurerBM85,
    "contec_cms50d_bt": SimulatedContecCMS50D,
    "berrymed_bci": SimulatedBerryMed,
}
