"""Enrolment by a Champion: a participant, their plan and a link code."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.runtime import open_engine, prepare_database
from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import resolve_place
from storage.db import session_scope
from storage.participants import enrol

CODE_DAYS_AFTER_RELEASE = 60
POSTCODE_PRECISIONS = ("postcode", "sector", "outward")


async def enrol_participant(
    settings: Settings,
    *,
    prison: str,
    name: str,
    release_date: date,
    postcode: str,
    phone: str | None,
    channel: str,
    goals: list[str],
    now: datetime,
) -> dict[str, Any]:
    """Enrol a person; raise ValueError with a clear message for a bad postcode."""
    try:
        place = resolve_place(postcode)
    except PlaceNotFound as exc:
        hint = f" Did you mean {' or '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise ValueError(f"--postcode not recognised: {postcode[:40]!r}.{hint}") from None
    engine = open_engine(settings)
    try:
        await prepare_database(engine)
        async with session_scope(engine) as session:
            participant, code = await enrol(
                session, prison_name=prison, display_name=name, release_date=release_date,
                release_postcode=place.label if place.precision in POSTCODE_PRECISIONS else None,
                region=place.label[:100] if place.precision == "town" else None,
                release_lat=place.lat, release_lon=place.lon, phone=phone, channel=channel,
                now=now, goals=[g.strip()[:200] for g in goals if g.strip()],
                code_days_after_release=CODE_DAYS_AFTER_RELEASE,
            )
    finally:
        await engine.dispose()
    expires = release_date + timedelta(days=CODE_DAYS_AFTER_RELEASE)
    return {"participant_id": participant.id, "link_code": code, "expires": expires.isoformat()}
