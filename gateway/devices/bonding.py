"""Bonded devices: telling a lost bond from any other failure, and forgetting it.

Blood pressure and glucose profiles (and any device whose measurements need an encrypted link)
bond: the first connection pairs, and the stack keeps the keys (BlueZ under /var/lib/bluetooth on
the Pi, the bumble backend in its key store file), so later connections only encrypt with them.
A device that lost its side of the bond (battery out, factory reset, paired to a phone since)
refuses the old key; the link stays unencrypted and every protected characteristic stays shut.
The gateway then forgets its side (``BleakClient.unpair``) so the next connection pairs anew, and
counts it where an operator sees it: the status message's ``recoveries`` (``bond_lost``), which
ingest keeps in ``gateways.recoveries``, and a warning in the gateway's log.
"""

from __future__ import annotations

import logging

from bleak import BleakClient
from bleak.exc import BleakError

from gateway.devices.recovery import Recoveries
from gateway.devices.state import DeviceState

log = logging.getLogger(__name__)

BOND_LOST = "bond_lost"

# How the stacks word a refused key. HCI: PIN or Key Missing (0x06) answering the LTK, or an
# Authentication Failure (0x05) ending the link; BlueZ over D-Bus: its AuthenticationFailed and
# AuthenticationRejected errors, and the kernel's errno for a refused key.
_REFUSED_KEY_MARKERS = (
    "PIN_OR_KEY_MISSING",
    "AUTHENTICATION_FAILURE",
    "org.bluez.Error.AuthenticationFailed",
    "org.bluez.Error.AuthenticationRejected",
    "Key Missing",
)


def bond_refused(error: BaseException) -> bool:
    """Whether ``error`` says the device refused the bond's key (rather than, say, went away)."""
    if not isinstance(error, BleakError):
        return False
    text = " ".join(str(part) for part in (error, *error.args))
    return any(marker.lower() in text.lower() for marker in _REFUSED_KEY_MARKERS)


async def forget_bond(
    client: BleakClient, state: DeviceState, recoveries: Recoveries, error: BaseException
) -> None:
    """The device lost the bond: drop ours so that the next connection pairs from scratch."""
    recoveries[BOND_LOST] += 1
    state.bonds_lost += 1
    state.needs_pairing = True
    log.warning(
        "%s (%s) refused its bond (%s): forgetting it, pairing again on the next connection",
        state.address,
        state.paired.kind,
        error,
    )
    try:
        await client.unpair()
    except (BleakError, NotImplementedError, OSError, KeyError) as failure:
        log.warning("%s: could not remove the old bond: %s", state.address, failure)
