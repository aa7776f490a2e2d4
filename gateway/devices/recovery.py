"""Bluetooth stack health: the watchdog's decision (pure) and the adapter reset (behind a protocol).

BlueZ and its controllers fail in ways that never raise: discovery silently stops delivering
advertisements, or every connection attempt times out until the adapter is power-cycled. Nobody
in a patient's home will notice, so the gateway must.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)

_CONTROLLER = re.compile(r"^Controller ((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})", re.MULTILINE)

SCANNER_RESTART = "scanner_restart"
ADAPTER_RESET = "adapter_reset"
CONNECT_FAILURES = "connect_failures"
DECODE_ERRORS = "decode_errors"
REJECTED_CONFIGS = "rejected_configs"
# A glucose meter whose record numbering restarted lower (reset, firmware update): read again.
GLUCOSE_RESTARTS = "glucose_numbering_restarts"


class Recoveries(Counter[str]):
    """Every recovery and failure, counted by name, as the uplink's status reports them."""

    def as_dict(self) -> dict[str, int]:
        return {name: int(count) for name, count in sorted(self.items())}


class RecoveryStep(StrEnum):
    """What the watchdog does about the Bluetooth stack this time round."""

    NONE = "none"
    RESTART_SCANNER = "restart_scanner"
    RESET_ADAPTER = "reset_adapter"


@dataclass(frozen=True, slots=True)
class WatchdogPolicy:
    # Devices advertise only around a measurement, so silence is judged over a long window.
    silence_limit: float = 30 * 60.0
    # Scanner restarts in a row, with no advertisement in between, before the adapter is reset.
    restarts_before_reset: int = 2
    # Failed connection attempts in a row (across devices) before the adapter is reset.
    failure_limit: int = 6
    check_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class WatchdogView:
    """What the watchdog looks at, all times on the monotonic clock."""

    now: float
    devices_expected: bool
    last_known_advert: float  # newest advertisement (or notification) of a paired device
    last_action: float  # the watchdog's previous restart or reset, or the start
    restarts_without_advert: int
    consecutive_connect_failures: int
    connected_devices: int


def decide(view: WatchdogView, policy: WatchdogPolicy) -> RecoveryStep:
    if not view.devices_expected:
        return RecoveryStep.NONE
    if view.consecutive_connect_failures >= policy.failure_limit and not view.connected_devices:
        return RecoveryStep.RESET_ADAPTER
    quiet_since = max(view.last_known_advert, view.last_action)
    if view.now - quiet_since < policy.silence_limit:
        return RecoveryStep.NONE
    if view.restarts_without_advert >= policy.restarts_before_reset and not view.connected_devices:
        return RecoveryStep.RESET_ADAPTER
    return RecoveryStep.RESTART_SCANNER


class AdapterControl(Protocol):
    """Power-cycle the Bluetooth adapter. Returns whether it worked.

    Supplied by the BLE backend (`gateway.ble`): BlueZ's commands, or a simulated radio's own.
    """

    async def reset(self) -> bool: ...

    async def address(self) -> str | None:
        """The adapter's own 48-bit address ("00:1A:7D:DA:71:13"), from which the gateway
        derives its system id; None when it cannot be read."""
        ...


class NoAdapterControl:
    """For platforms where the gateway cannot touch the adapter: the scanner restart must do."""

    async def reset(self) -> bool:
        return False

    async def address(self) -> str | None:
        return None


class CommandAdapterControl:
    """Reset by running commands: BlueZ's ``bluetoothctl power off`` / ``power on`` by default.

    ``bluetoothctl`` talks to bluetoothd over D-Bus, which the ``bluetooth`` group may do; the
    systemd unit grants no capabilities, so ``hciconfig hciX reset`` (CAP_NET_ADMIN) is only the
    fallback for a gateway run as root.
    """

    BLUEZ: tuple[tuple[tuple[str, ...], ...], ...] = (
        (("bluetoothctl", "power", "off"), ("bluetoothctl", "power", "on")),
        (("hciconfig", "hci0", "reset"),),
    )
    # Its first line names the default controller: "Controller 00:1A:7D:DA:71:13 (public)".
    SHOW: tuple[str, ...] = ("bluetoothctl", "show")

    def __init__(
        self,
        alternatives: Sequence[Sequence[Sequence[str]]] = BLUEZ,
        *,
        show: Sequence[str] = SHOW,
        timeout: float = 15.0,
        pause: float = 1.0,
    ) -> None:
        self.alternatives = alternatives
        self.show = show
        self.timeout = timeout
        self.pause = pause

    async def reset(self) -> bool:
        for commands in self.alternatives:
            if await self._run_all(commands):
                return True
        return False

    async def _run_all(self, commands: Sequence[Sequence[str]]) -> bool:
        for index, argv in enumerate(commands):
            if index:
                await asyncio.sleep(self.pause)  # let the controller settle between off and on
            if not await self._run(argv):
                return False
        return True

    async def address(self) -> str | None:
        output = await self._output(self.show)
        found = _CONTROLLER.search(output or "")
        return found.group(1).upper() if found else None

    async def _run(self, argv: Sequence[str]) -> bool:
        return await self._output(argv) is not None

    async def _output(self, argv: Sequence[str]) -> str | None:
        """What ``argv`` printed, None if it could not run or failed."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
        except OSError as error:
            log.warning("cannot run %s: %s", " ".join(argv), error)
            return None
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.warning("%s did not finish within %g s", " ".join(argv), self.timeout)
            return None
        if process.returncode != 0:
            log.warning(
                "%s failed (%s): %s", " ".join(argv), process.returncode, output.decode()[-200:]
            )
            return None
        return output.decode(errors="replace")
