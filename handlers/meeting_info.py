"""INFO n: all about one listed meeting: address, directions, how to join, contact, notes.

On Telegram everything is shown, with a directions link. By SMS the full address stands in
for the link, and the text is fitted into three segments: the notes give way first (cut at
a space), then a long name and address; a join link or dial string is shown whole or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.meeting_text import (
    SMS_ROOM,
    clip_words,
    contact_of,
    full_address,
    is_running,
    meeting_name,
    next_starts,
    septets,
    tidy,
    weekly,
    when,
)
from handlers.textin import plain_letters
from handlers.texts import t
from meeting_finder.offerable import has_venue, is_join_link
from meeting_finder.search import directions_url
from storage.models import Meeting

NOTE_MIN = 24  # a note cut shorter than this says too little to keep
LINK_MAX_SMS = 120  # a longer join link is left out by SMS when there is a dial-in


def _when_line(meetings: Sequence[Meeting], zone: ZoneInfo, now: datetime) -> str:
    if not any(is_running(m) for m in meetings):
        return t("meetings.not_running")
    starts = next_starts(meetings, now)
    if not starts:
        return t("meetings.no_time")
    return t("meetings.info_when", next=when(starts[0], zone, now), days=weekly(starts, zone))


def _essentials(meeting: Meeting, *, telegram: bool, short: bool) -> list[str]:
    """Return the address (and directions), join link, dial-in and contact lines."""
    plain = not telegram
    lines = []
    if has_venue(meeting):
        address = full_address(meeting, plain=plain)
        if short:
            kept = clip_words(address, 120)
            postcode = plain_letters(meeting.postcode or "")
            address = kept if not postcode or postcode in kept else f"{kept}, {postcode}"
        lines.append(t("meetings.info_address", address=address))
        if telegram and meeting.lat is not None and meeting.lon is not None:
            lines.append(t("meetings.info_directions", url=directions_url(meeting.lat,
                                                                          meeting.lon)))
    url, phone = meeting.conference_url or "", (meeting.conference_phone or "").strip()
    if is_join_link(url) and not (short and phone and len(url) > LINK_MAX_SMS):
        lines.append(t("meetings.info_join", url=url.strip()))
    if phone:
        lines.append(t("meetings.info_dial", phone=phone))
    contact = contact_of(meeting, plain=plain)
    if contact:
        lines.append(t("meetings.info_contact", contact=clip_words(contact, 90)
                                                if short else contact))
    return lines


def _notes(meeting: Meeting, *, plain: bool) -> list[str]:
    """Return the feed's notes: about the place, the link, the dial-in, and the meeting."""
    found = [meeting.location_notes, meeting.conference_url_notes,
             meeting.conference_phone_notes, meeting.notes]
    notes = [n.strip() for n in found if n and n.strip()]
    return [" ".join(plain_letters(n).split()) for n in notes] if plain else notes


def info_text(
    meetings: Sequence[Meeting], *, n: int, saved: bool, zone: ZoneInfo, now: datetime,
    telegram: bool,
) -> str:
    """Return everything about a listed meeting (or a group meeting on several days)."""
    first = meetings[0]
    tail = t("meetings.info_saved" if saved else "meetings.info_save", n=n)
    notes = _notes(first, plain=not telegram)
    if telegram:
        lines = [meeting_name(first, plain=False), _when_line(meetings, zone, now),
                 *_essentials(first, telegram=True, short=False),
                 *(t("meetings.info_notes", notes=note) for note in notes), tail]
        return "\n".join(lines)
    for short in (False, True):
        head = [meeting_name(first, plain=True, level=4 if short else 0),
                _when_line(meetings, zone, now), *_essentials(first, telegram=False,
                                                               short=short)]
        room = SMS_ROOM - septets("\n".join([*head, tail])) - 1
        if room >= 0:
            break
    return tidy("\n".join([*head, *_fit_notes(notes, room), tail]))


def _fit_notes(notes: list[str], room: int) -> list[str]:
    """Return as many notes as fit in `room` septets, the last one cut at a space."""
    kept = []
    for note in notes:
        line = t("meetings.info_notes", notes=note)
        if septets(line) + 1 <= room:
            kept.append(line)
            room -= septets(line) + 1
            continue
        label = septets(t("meetings.info_notes", notes="")) + 1
        cut = clip_words(note, room - label) if room - label >= NOTE_MIN else ""
        while cut and septets(t("meetings.info_notes", notes=cut)) + 1 > room:
            cut = clip_words(cut, len(cut) - 4)  # extension characters count twice
        if len(cut) >= NOTE_MIN:
            kept.append(t("meetings.info_notes", notes=cut))
        break
    return kept
