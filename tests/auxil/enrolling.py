"""Enrolling through the staff pages, as a Champion does: the form's answers by field name,
and reading back the code and plan link the answer shows.

    pid, code = await enrol_on_page(client, name="Sam", phone="07400 123456")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import httpx

from tests.auxil.web import read_page, submit

NEW = "/staff/participants/new"
CODE = re.compile(r'class="panel__code">\s*([A-Z0-9]{5}-[A-Z0-9]{5})\s*<')
VERSION = re.compile(r'name="consent_version" value="([^"]*)"')
RELEASE = date(2026, 12, 10)  # a fortnight after the web tests' NOW
MOBILE = "07400 123456"  # real-shaped, not the drama range: refused nowhere


def enrolment(*, name: str = "Sam", release: date = RELEASE, area: str = "ST3 2QH",
              phone: str = MOBILE, channel: str = "sms", sessions: str = "3",
              consent: bool = True, review: bool = False, **extra: str) -> dict[str, str]:
    """Return the enrolment form as a browser posts it (fields by name)."""
    data = {"name": name, "release_date-day": str(release.day),
            "release_date-month": str(release.month), "release_date-year": str(release.year),
            "postcode": area, "phone": phone, "channel": channel, "sessions_inside": sessions,
            **extra}
    if consent:
        data["consent"] = "yes"
    if review:
        data["staff_review_consent"] = "yes"
    return data


@dataclass(frozen=True)
class Enrolled:
    """Who was enrolled on the page, and the code it showed once."""

    participant_id: int
    code: str
    html: str


def read_enrolled(html: str) -> Enrolled:
    """Read the participant id and link code from the page that answers enrolment."""
    page = read_page(html)
    match = CODE.search(html)
    assert match, "no link code on the page"
    plan = page.links["Go to their plan"]
    return Enrolled(int(plan.rsplit("/", 1)[1]), match.group(1), html)


async def enrol_on_page(client: httpx.AsyncClient, **answers: object) -> Enrolled:
    """Fill in and send the enrolment form; return who was enrolled and their code."""
    data = enrolment(**answers)  # type: ignore[arg-type]
    if "consent_version" not in data:  # the hidden field: the wording version shown
        shown = VERSION.search((await client.get(NEW)).text)
        data["consent_version"] = shown.group(1) if shown else ""
    response = await submit(client, NEW, data)
    assert response.status_code == 200, response.text[:2000]
    return read_enrolled(response.text)
