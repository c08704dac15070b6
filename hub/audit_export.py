"""Reading the audit trail out: time filters as people write them, and spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TextIO

from hub.storage.audit import AuditEvent

CSV_COLUMNS = ("id", "at", "event", "actor", "subject", "source", "outcome", "detail")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP
# "CSV injection"); tab and carriage return too, as some of them strip those first.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InvalidTime(ValueError):
    """A --since/--until value that is not a date or an RFC 3339 time."""


def parse_time(text: str, name: str) -> float:
    """Unix seconds for `2026-12-03`, `2026-12-03T10:00:00Z` or with an offset; UTC if none."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTime(
            f"{name}: {text[:40]!r} is not a date or time; write it like 2026-12-03 or "
            "2026-12-03T10:00:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):
        raise InvalidTime(f"{name}: {text[:40]!r} is out of range.") from None


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def write_csv(events: Iterable[AuditEvent], out: TextIO, *, header: bool = True) -> None:
    """Events as CSV rows (detail as JSON), every text cell formula-safe."""
    # CRLF ends each row (RFC 4180), so a CR or LF inside a cell is always quoted.
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for event in events:
        wire = event.to_wire()
        row = [
            str(wire["id"]),
            *("" if wire[column] is None else str(wire[column]) for column in CSV_COLUMNS[1:-1]),
            json.dumps(wire["detail"], ensure_ascii=False, sort_keys=True),
        ]
        writer.writerow([safe_cell(cell) for cell in row])
