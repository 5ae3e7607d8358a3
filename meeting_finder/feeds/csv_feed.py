"""Import meetings from a CSV file (a spreadsheet a coordinator keeps), via Meeting Guide rows.

Columns (header row required; names are case-insensitive; only slug, name and day are needed):

| column | meaning |
| --- | --- |
| slug | unique id of the meeting in this sheet |
| name | meeting name |
| day | Monday..Sunday or Mon..Sun, several split by ";" or "/" (or Meeting Guide 0 = Sunday) |
| time, end_time | local start and end, HH:MM |
| timezone | IANA zone, e.g. Europe/London (default: the import's zone; never guessed) |
| location | venue name |
| address, city, postal_code, country | the venue's address (or one formatted_address column) |
| approximate | "yes" when the address is only a town or area (for an online meeting) |
| latitude, longitude | optional; a UK postcode is placed offline when they are missing |
| region | area shown to coordinators |
| types | codes separated by "," or ";" (e.g. "SMART;SMART-FF;O") |
| attendance_option | in_person, online, hybrid or inactive |
| conference_url, conference_phone | how to join (a number with no + or country is British) |
| conference_url_notes, conference_phone_notes | passcodes and how to join |
| notes, location_notes, group, district | free text |
| contact | free text for first-timers (or contact_1_name, contact_1_phone, contact_1_email) |

A sheet row listing several days counts once in the summary, like a Meeting Guide day array.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.errors import FeedError
from meeting_finder.feeds.importer import ImportSummary, Progress, import_rows, read_path

CSV_PHONE_REGION = "GB"  # coordinators' sheets are British: "01782 123456" means +44
_DAY_NAMES = {
    "sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3,
    "thursday": 4, "friday": 5, "saturday": 6,
}


def _mg_day(text: str) -> int | str:
    """Turn "Monday", "mon" or "1" into a Meeting Guide day; leave junk for the row check."""
    word = text.strip().lower()
    if word.isdigit():
        return int(word)
    for name, number in _DAY_NAMES.items():
        if len(word) >= 3 and name.startswith(word):
            return number
    return text.strip()


def csv_to_rows(text: str) -> list[dict[str, Any]]:
    """Turn CSV text into Meeting Guide rows (one per line of the sheet)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"slug", "name"} <= {
        (f or "").strip().lower() for f in reader.fieldnames
    }:
        raise FeedError("a meetings CSV needs a header row with at least slug, name and day")
    rows: list[dict[str, Any]] = []
    for raw in reader:
        row: dict[str, Any] = {
            (k or "").strip().lower(): (v or "").strip()
            for k, v in raw.items()
            if isinstance(v, str)
        }
        days = [d for d in re.split(r"[;/|]", row.get("day", "")) if d.strip()]
        if len(days) > 1:
            row["day"] = [_mg_day(d) for d in days]
        elif days:
            row["day"] = _mg_day(days[0])
        if row.get("types"):
            row["types"] = [t.strip() for t in re.split(r"[;,]", row["types"]) if t.strip()]
        if row.get("contact"):
            row["contact_1_name"] = row.pop("contact")
        rows.append(row)
    return rows


async def read_csv_rows(source: str | bytes) -> list[dict[str, Any]]:
    """Read a meetings CSV (a path or raw bytes) as Meeting Guide rows; FeedError if unreadable."""
    data = source if isinstance(source, bytes) else await read_path(source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Excel's default on Windows
    try:
        return csv_to_rows(text)
    except csv.Error as exc:
        raise FeedError(f"not a readable CSV: {exc}") from None


async def import_csv(
    session: AsyncSession,
    source: str | bytes,
    *,
    now: datetime,
    source_name: str,
    default_tz: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a meetings CSV (a path or raw bytes) and commit; zoneless rows take `default_tz`."""
    rows = await read_csv_rows(source)
    return await import_rows(
        session, rows, now=now, source_name=source_name, default_tz=default_tz,
        phone_region=CSV_PHONE_REGION, progress=progress,
    )
