"""Stored PLX spot checks: count, report, delete, through the Record Access Control Point.

An oximeter whose PLX Features say "Measurement Storage for Spot-check measurements is
supported" keeps the spot checks it took while no collector was connected. PLXS records carry
no sequence number and its RACP knows only "All records", so the gateway cannot ask for "the
ones after the last stored": it asks how many there are, has them all reported (each arrives as a
PLX Spot-Check Measurement and is stored as from the device's memory), and once the report has
ended in Success, and so every record before the response is in the outbox, deletes them all.
A unit that refuses deletion (Op Code not supported) reports the same records at every
connection; the session drops repeats it has already stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.gatt import (
    PlxFeatures,
    RacpMessage,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
)

log = logging.getLogger(__name__)

# Writes one request, returns the device's answer (None: silence or a lost link).
Exchange = Callable[[RacpRequest], Awaitable[RacpMessage | None]]


@dataclass(slots=True)
class SpotCheckSync:
    """What one connection's transfer did, for the log and the tests."""

    count: int | None = None  # what the device said it holds (None: it did not say)
    reported: RacpResponse | None = None
    deleted: bool = False
    delete_refused: bool = False  # Op Code not supported: later sessions stop asking


def wants_sync(features: PlxFeatures | None) -> bool:
    return features is not None and features.stores_spot_checks


async def sync_spot_checks(
    exchange: Exchange, address: str, *, deletes: bool = True
) -> SpotCheckSync:
    """Fetch and (``deletes``) clear the oximeter's stored spot checks."""
    result = SpotCheckSync()
    answer = await exchange(RacpRequest.count_all())
    if isinstance(answer, RacpRecordCount):
        result.count = answer.count
        if answer.count == 0:
            return result
    elif answer is None:
        return result  # no answer: the link is gone or the unit is stuck; next time
    # A unit that cannot count (Op Code not supported) may still report.
    report = await exchange(RacpRequest.report_all())
    if not isinstance(report, RacpResponse):
        log.warning("%s: stored spot checks not all received; asks again next time", address)
        return result
    result.reported = report
    if not report.succeeded:
        if report.value is not RacpResponseValue.NO_RECORDS_FOUND:
            log.warning("%s refused to report stored spot checks: %s", address, report.value.name)
        return result
    if deletes:
        deleted = await exchange(RacpRequest.delete_all())
        if isinstance(deleted, RacpResponse):
            result.deleted = deleted.succeeded
            result.delete_refused = deleted.value is RacpResponseValue.OP_CODE_NOT_SUPPORTED
            if not deleted.succeeded:
                log.info("%s keeps its stored spot checks: %s", address, deleted.value.name)
    return result
