"""A patient's readings as CSV: one reading a row, one column list, for both exports
(issue 20): a period's ``/patients/{id}/readings.csv`` and ``$everything?_format=text/csv``.

First the six columns a clinician reads (local time, metric, value, unit, device, flags), then
what a spreadsheet or another system needs to tell readings apart and trace them: the UTC time,
LOINC, the device's address and UDI, the gateway, and how the time was made (issue 19: the
stamp the device showed, when the gateway received it, the seconds it took off, on what basis;
empty for readings from gateways that did not record it).

Pure over rows of :data:`SELECT`, so the period's export and the streamed one write the same
bytes for the same reading.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any, Final

from dashboard.clinical import time_record
from dashboard.web import LOCAL_TZ
from telemon.metrics import METRICS_BY_ID

COLUMNS: Final = (
    "time",
    "metric",
    "value",
    "unit",
    "device",
    "flags",
    "time_utc",
    "loinc",
    "device_address",
    "device_udi",
    "gateway",
    "device_time",
    "received_at",
    "time_correction_s",
    "time_basis",
)

# The rows :func:`lines` reads: add a window with ``AND o.measured_at ...`` and ORDER BY.
SELECT: Final = (
    "SELECT o.metric_id, o.measured_at, o.value, o.flags, o.received_at, o.time_correction, "
    "d.kind, d.manufacturer, d.model, d.address, d.udi, g.code "
    "FROM observations o LEFT JOIN devices d ON d.id = o.device_id "
    "LEFT JOIN gateways g ON g.id = o.gateway_id WHERE o.patient_id = %(p)s"
)
ORDER: Final = " ORDER BY o.measured_at, o.metric_id"

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def query(window: str = "") -> str:
    """The export's query, its rows limited by ``window`` (SQL starting with AND)."""
    return SELECT + window + ORDER


def row(record: tuple[Any, ...]) -> tuple[str, ...] | None:
    """The cells of a :data:`SELECT` row; None for a metric this server no longer knows.
    Text that came from outside (flags, device names, the device's stamp) is made inert."""
    metric_id, at, value, flags, received, stored, kind, maker, model, address, udi, gateway = (
        record
    )
    metric = METRICS_BY_ID.get(metric_id)
    if metric is None:
        return None
    time = time_record(stored)
    return (
        at.astimezone(LOCAL_TZ).isoformat(),
        metric.key,
        repr(value),
        metric.unit,
        csv_cell(" ".join(x for x in (kind, maker, model) if x)),
        csv_cell(" ".join(sorted(flags or ()))),
        at.astimezone(UTC).isoformat(),
        metric.loinc,
        csv_cell(address or ""),
        csv_cell(udi or ""),
        csv_cell(gateway or ""),
        csv_cell(time.device_time or "") if time else "",
        received.astimezone(LOCAL_TZ).isoformat() if received else "",
        str(time.applied_s) if time else "",
        time.basis.value if time else "",
    )


def lines(records: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """The header, then one CSV line per reading, as the records come (a cursor streams)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield _taken(out)
    for record in records:
        cells = row(record)
        if cells is not None:
            writer.writerow(cells)
            yield _taken(out)


def _taken(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text
