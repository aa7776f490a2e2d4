"""A reading's time correction and a device's clock, in words (issue 19).

The gateway records how it made each reading's time from the device's stamp
(:class:`telemon.time_correction.TimeCorrection`); a clinician sees it when it matters: the time
was shifted, replaced, or read through a DST change. A reading whose stamp was taken as sent, in
an ordinary hour, needs no note.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from telemon.time_correction import LocalTimeIssue, TimeBasis, TimeCorrection

Translate = Callable[..., str]


def amount(t: Translate, seconds: int) -> str:
    """How far a clock is off, in the unit a person would say it in."""
    minutes = round(abs(seconds) / 60)
    if minutes < 90:
        return t("time.min", n=minutes)
    if minutes < 48 * 60:
        return t("time.h", n=round(minutes / 60))
    return t("time.d", n=f"{round(minutes / 1440):,}".replace(",", "."))


def _offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def clock_facts(
    t: Translate, ignores_dst: bool | None, zone_min: int | None, dst_min: int | None
) -> list[str]:
    """What the gateway knows of a device's clock that explains its readings' times: the zone
    and DST offset it declares, or that it keeps standard time all year; empty otherwise."""
    if zone_min is not None and dst_min is not None:
        if dst_min == 0:
            season = t("time.standard")
        else:
            unit = t("time.h", n=dst_min // 60) if dst_min % 60 == 0 else t("time.min", n=dst_min)
            season = t("clocks.dst_plus", amount=unit)
        return [t("clocks.declares", offset=_offset(zone_min), season=season)]
    if ignores_dst:
        return [t("clocks.ignores_dst")]
    return []


def time_note(time: TimeCorrection | None, t: Translate) -> list[str]:
    """What to say about a reading's time; empty when the device's stamp was taken as is."""
    if time is None or time.device_time is None:
        return []  # from an older gateway, or no stamp at all (flagged gateway_time)
    notes: list[str] = []
    if time.basis is TimeBasis.CORRECTED:
        key = "time.corrected_ahead" if time.applied_s > 0 else "time.corrected_behind"
        notes.append(t(key, amount=amount(t, time.applied_s)))
    elif time.basis is TimeBasis.GATEWAY:
        notes.append(t("time.received"))
    if time.local_issue is LocalTimeIssue.GAP:
        notes.append(t("time.gap"))
    elif time.local_issue is LocalTimeIssue.REPEATED:
        notes.append(t("time.repeated"))
    if time.ignores_dst:
        notes.append(t("time.ignores_dst"))
    if not notes:
        return []
    shown = datetime.fromisoformat(time.device_time).strftime("%d/%m/%Y %H:%M")
    notes.append(t("time.device_showed", at=shown))
    if time.device_zone_min is not None and time.utc_offset_min is not None:
        season = t("time.dst") if time.dst else t("time.standard")
        notes.append(f"{t('time.device_zone', offset=_offset(time.utc_offset_min))}, {season}")
    elif time.zone and time.utc_offset_min is not None:
        season = t("time.dst") if time.dst else t("time.standard")
        notes.append(
            f"{t('time.zone', zone=time.zone, offset=_offset(time.utc_offset_min))}, {season}"
        )
    return notes
