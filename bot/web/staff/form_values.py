"""Reading what was typed into a staff form: text, GOV.UK date inputs, times and numbers.

Each reader returns the value or raises `FieldProblem` with the message to show beside the
field, in the GOV.UK Design System's words ("Enter the release date", "... must be a real
date"). `typed(form)` is what the page shows again when there is a problem.
"""

from __future__ import annotations

import re
from datetime import date, time

from starlette.datastructures import FormData

TIME = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?$", re.IGNORECASE)


class FieldProblem(ValueError):
    """What is wrong with one field, worded for the page."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class FieldProblems(ValueError):
    """Problems with several fields at once (field -> message, in page order)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def text(form: FormData, name: str, limit: int = 500) -> str:
    """Return a text field as typed (trimmed, at most `limit` characters)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def ticked(form: FormData, name: str) -> bool:
    """Say whether a checkbox was ticked."""
    return isinstance(form.get(name), str)


def typed(form: FormData) -> dict[str, str]:
    """Return everything typed, to show again beside the problems (never the CSRF token)."""
    return {k: v[:500] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def read_date(form: FormData, name: str, label: str) -> date:
    """Return the date in NAME-day, NAME-month and NAME-year, or raise FieldProblem."""
    parts = {part: text(form, f"{name}-{part}", 10) for part in ("day", "month", "year")}
    if not any(parts.values()):
        raise FieldProblem(name, f"Enter the {label.lower()}")
    missing = [part for part, value in parts.items() if not value]
    if missing:
        raise FieldProblem(name, f"{label} must include a {' and a '.join(missing)}")
    if not all(v.isdigit() for v in parts.values()) or len(parts["year"]) != 4:
        raise FieldProblem(name, f"{label} must be a real date, like 27 3 2027")
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        raise FieldProblem(name, f"{label} must be a real date, like 27 3 2027") from None


def read_time(form: FormData, name: str, label: str) -> time:
    """Return a time of day typed as 14:30, 2:30pm or 2pm, or raise FieldProblem."""
    raw = text(form, name, 20)
    if not raw:
        raise FieldProblem(name, f"Enter the {label.lower()}")
    match = TIME.match(raw)
    hour, minute = (int(match.group(1)), int(match.group(2) or 0)) if match else (99, 0)
    half = (match.group(3) or "").lower() if match else ""
    if half and not 1 <= hour <= 12:
        hour = 99
    elif half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise FieldProblem(name, f"{label} must be a real time, like 14:30")
    return time(hour, minute)


def read_count(form: FormData, name: str, label: str) -> int:
    """Return a whole number (empty means 0), or raise FieldProblem."""
    raw = text(form, name, 10)
    if not raw:
        return 0
    if not raw.isdigit():
        raise FieldProblem(name, f"{label} must be a whole number, like 4")
    return int(raw)
