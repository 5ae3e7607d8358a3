"""Feeds: meeting lists a coordinator imports from an address or an uploaded file.

Adding a feed (or "Refresh now") shows a preview of what the import would change, meeting
by meeting, and saves nothing; "Apply this import" then runs it, as `throughcare meetings
import` does (both through `scheduler.feed_refresh`). Between the two the feed's bytes wait
in a private temporary file named by a random token that only this staff session holds, so
what is applied is exactly what was previewed. Feeds with an address are refreshed daily
by the worker. A coordinator sees their region's feeds; another region's is a 404.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData, UploadFile

from bot.web.staff import form_values as fv
from bot.web.staff.deps import CoordinatorStaff, NowDep, SessionDep
from bot.web.staff.session import set_notice
from bot.web.templating import render
from meeting_finder.errors import FeedError
from meeting_finder.feeds.importer import ImportSummary, fetch_bytes
from scheduler.feed_refresh import AUTO, FORMATS, detect_format, import_feed, new_client
from storage.audit_q import record_staff_action
from storage.db import session_factory
from storage.feeds_q import add_feed, feed_for_staff, feed_named, feeds_for_staff, record_run
from storage.models import FeedSource, StaffRole, StaffUser

router = APIRouter()

LIST_PATH = "/staff/feeds"
# Bytes; the largest real feeds are about 1.5 MB. Under bot.web.limits' 5 MB for the whole
# request, so a file a little too big gets this page's message rather than a bare 413.
MAX_UPLOAD = 4 * 1024 * 1024
MAX_NAME = 200
MAX_URL = 1000
SHOWN_PER_SECTION = 300  # a first import of a big feed adds thousands: show the first ones
DEFAULT_ZONE = "Europe/London"
FORMAT_OPTIONS = [(AUTO, "Work it out from the file"), ("meeting-guide", "Meeting Guide JSON"),
                  ("csv", "CSV spreadsheet")]
PENDING_DIR = Path(tempfile.gettempdir()) / "throughcare-feed-previews"
PENDING_TTL = 24 * 3600  # seconds a preview can wait to be applied
SESSION_KEY = "feed_preview"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Pending:
    """A previewed import waiting to be applied (its bytes are kept beside it)."""

    staff_id: int
    name: str
    url: str | None
    format: str  # as read: meeting-guide or csv
    timezone: str
    feed_id: int | None  # None: a new feed, added when applied


def _keep(pending: Pending, data: bytes) -> str:
    """Keep a preview's bytes in a private file; return the token naming it."""
    PENDING_DIR.mkdir(mode=0o700, exist_ok=True)
    cutoff = time.time() - PENDING_TTL
    for old in PENDING_DIR.iterdir():
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(32)
    (PENDING_DIR / f"{token}.data").write_bytes(data)
    (PENDING_DIR / f"{token}.json").write_text(json.dumps(asdict(pending)))
    return token


def _take(request: Request, token: str, staff_id: int) -> tuple[Pending, bytes] | None:
    """Return the preview this session made under `token` (None if gone or not theirs)."""
    if not TOKEN.match(token) or request.session.get(SESSION_KEY) != token:
        return None
    try:
        pending = Pending(**json.loads((PENDING_DIR / f"{token}.json").read_text()))
        data = (PENDING_DIR / f"{token}.data").read_bytes()
    except (OSError, ValueError, TypeError):
        return None
    return (pending, data) if pending.staff_id == staff_id else None


def _forget(request: Request, token: str) -> None:
    request.session.pop(SESSION_KEY, None)
    for suffix in (".json", ".data"):
        (PENDING_DIR / f"{token}{suffix}").unlink(missing_ok=True)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _may_add(staff: StaffUser) -> bool:
    return staff.role == StaffRole.ADMIN or bool((staff.region or "").strip())


def _feed_view(feed: FeedSource) -> dict[str, Any]:
    result = feed.last_result or {}
    return {"feed": feed, "counts": {k: result.get(k, 0) for k in
                                     ("added", "updated", "unchanged", "skipped", "cancelled")}
            if result else None}


async def _list_page(request: Request, session: AsyncSession, staff: StaffUser, *,
                     errors: dict[str, str] | None = None,
                     values: dict[str, str] | None = None,
                     status_code: int = 200) -> HTMLResponse:
    feeds = await feeds_for_staff(session, staff)
    return render(request, "staff/feeds/list.html", {
        "feeds": [_feed_view(f) for f in feeds], "formats": FORMAT_OPTIONS,
        "may_add": _may_add(staff), "max_mb": MAX_UPLOAD // (1024 * 1024),
        "show_region": staff.role == StaffRole.ADMIN, "errors": errors or {},
        "values": values or {"timezone": DEFAULT_ZONE, "format": AUTO}},
        status_code=status_code)


@router.get("/feeds", response_class=HTMLResponse)
async def list_feeds(request: Request, staff: CoordinatorStaff,
                     session: SessionDep) -> HTMLResponse:
    """Show the feeds this person may see, and the form to add one."""
    return await _list_page(request, session, staff)


def _check_url(url: str) -> str:
    parts = urlsplit(url) if len(url) <= MAX_URL and not re.search(r"\s", url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise fv.FieldProblem("url", "Enter a feed address starting with https://, like "
                                     "https://example.org/meetings.json")
    return url


async def _check_name(session: AsyncSession, form: FormData) -> str:
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise fv.FieldProblem("name", "Enter a name for the feed")
    if len(name) > MAX_NAME:
        raise fv.FieldProblem("name", f"Name must be {MAX_NAME} characters or fewer")
    if CONTROL.search(name):
        raise fv.FieldProblem("name", "Name must be plain text, without control characters")
    if await feed_named(session, name) is not None:
        raise fv.FieldProblem("name", f"There is already a feed called {name}: "
                                      "choose another name")
    return name


def _check_settings(form: FormData) -> tuple[str, str]:
    """Return the time zone and format chosen, or raise FieldProblems."""
    problems: dict[str, str] = {}
    zone = fv.text(form, "timezone", 100)
    if not zone:
        problems["timezone"] = "Enter the time zone the meeting times are in"
    elif zone not in _zones():
        problems["timezone"] = "Time zone must be a zone name like Europe/London"
    chosen = fv.text(form, "format", 20)
    if chosen not in FORMATS:
        problems["format"] = "Choose the format of the feed"
    if problems:
        raise fv.FieldProblems(problems)
    return zone, chosen


async def _read_upload(form: FormData, field: str = "upload") -> bytes | None:
    """Return an uploaded file's bytes (None if no file was chosen), within MAX_UPLOAD."""
    upload = form.get(field)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise fv.FieldProblem(field, f"The file must be smaller than "
                                     f"{MAX_UPLOAD // (1024 * 1024)} MB")
    if not data:
        raise fv.FieldProblem(field, "The selected file is empty")
    return data


async def _download(url: str, field: str = "url") -> bytes:
    """Fetch a feed for a preview; FieldProblem (no trace) if it cannot be fetched."""
    try:
        async with new_client() as client:
            return await fetch_bytes(url, client=client)
    except FeedError as exc:
        reason = str(exc).removeprefix(f"cannot fetch {url}: ")
        raise fv.FieldProblem(field, f"Could not fetch the feed: {reason}") from None


async def _read_new_feed(session: AsyncSession, form: FormData) -> tuple[Pending, bytes]:
    """Read the add-a-feed form and get the feed's bytes, or raise FieldProblems."""
    problems: dict[str, str] = {}
    name = zone = chosen = url = ""
    data: bytes | None = None
    for check in ("name", "source", "settings"):
        try:
            if check == "name":
                name = await _check_name(session, form)
            elif check == "source":
                url, data = fv.text(form, "url", MAX_URL + 1), await _read_upload(form)
                if url and data is not None:
                    raise fv.FieldProblem("url", "Give a feed address or a file, not both")
                if not url and data is None:
                    raise fv.FieldProblem("url", "Enter a feed address, or choose a file "
                                                 "to upload")
                url = _check_url(url) if url else ""
            else:
                zone, chosen = _check_settings(form)
        except fv.FieldProblem as exc:
            problems[exc.field] = exc.message
        except fv.FieldProblems as exc:
            problems.update(exc.problems)
    if problems:
        raise fv.FieldProblems(problems)
    if data is None:
        data = await _download(url)
    kind = detect_format(data) if chosen == AUTO else chosen
    return Pending(staff_id=0, name=name, url=url or None, format=kind, timezone=zone,
                   feed_id=None), data


async def _preview(request: Request, session: AsyncSession, staff: StaffUser,
                   pending: Pending, data: bytes, *, region: str | None,
                   now: datetime, field: str) -> HTMLResponse:
    """Run the import in a session of its own and roll it back; show what it would do."""
    await session.commit()  # what this request wrote so far (last seen) is kept
    async with session_factory(request.app.state.engine)() as trial:
        try:
            summary = await import_feed(trial, data, source_name=pending.name,
                                        format=pending.format, timezone=pending.timezone,
                                        region=region, now=now, preview=True)
        except FeedError as exc:
            raise fv.FieldProblem(field, f"This is not a feed we can read: {exc}") from None
    mine = Pending(**{**asdict(pending), "staff_id": staff.id or 0})
    token = _keep(mine, data)
    request.session[SESSION_KEY] = token
    return render(request, "staff/feeds/preview.html", {
        "pending": mine, "token": token, **_sections(summary)})


def _sections(summary: ImportSummary) -> dict[str, Any]:
    shown = SHOWN_PER_SECTION
    return {"summary": summary, "shown": shown, "sections": [
        ("Added", summary.added_meetings[:shown], len(summary.added_meetings)),
        ("Updated", summary.updated_meetings[:shown], len(summary.updated_meetings)),
        ("Cancelled", summary.cancelled_meetings[:shown], len(summary.cancelled_meetings))],
        "skipped": summary.skipped[:shown]}


@router.post("/feeds", response_class=HTMLResponse)
async def preview_new_feed(request: Request, staff: CoordinatorStaff, session: SessionDep,
                           now: NowDep) -> HTMLResponse:
    """Check the form, read the feed, and preview its import (nothing is saved)."""
    if not _may_add(staff):
        raise HTTPException(403, "Your account has no region: ask an administrator.")
    form = await request.form()
    region = None if staff.role == StaffRole.ADMIN else staff.region
    try:
        pending, data = await _read_new_feed(session, form)
        return await _preview(request, session, staff, pending, data, region=region, now=now,
                              field="upload" if pending.url is None else "url")
    except fv.FieldProblem as exc:
        problems = {exc.field: exc.message}
    except fv.FieldProblems as exc:
        problems = exc.problems
    finally:
        await form.close()  # uploads wait in temporary files until closed
    order = ("name", "url", "upload", "timezone", "format")
    return await _list_page(request, session, staff, values=fv.typed(form), status_code=400,
                            errors={f: problems[f] for f in order if f in problems})


@router.post("/feeds/{feed_id}/refresh", response_class=HTMLResponse)
async def refresh_feed_now(request: Request, feed_id: int, staff: CoordinatorStaff,
                           session: SessionDep, now: NowDep) -> Response:
    """Fetch a feed again (or read its new file) and preview the import."""
    feed = await feed_for_staff(session, staff, feed_id)
    if feed is None or feed.id is None:
        raise HTTPException(404)
    form = await request.form()
    field = "url" if feed.url else f"upload-{feed.id}"
    try:
        data = await _download(feed.url, field) if feed.url else \
            await _read_upload(form, field)
        if data is None:
            raise fv.FieldProblem(field, f"Choose a new file for {feed.name}")
        pending = Pending(staff_id=0, name=feed.name, url=feed.url, format=feed.format,
                          timezone=feed.timezone, feed_id=feed.id)
        return await _preview(request, session, staff, pending, data, region=feed.region,
                              now=now, field=field)
    except fv.FieldProblem as exc:
        if feed.url:
            await record_run(session, feed.id, now=now, error=exc.message)
        set_notice(request, f"{feed.name}: {exc.message}")
        return RedirectResponse(LIST_PATH, status_code=303)
    finally:
        await form.close()


@router.post("/feeds/apply", response_class=HTMLResponse)
async def apply_import(request: Request, staff: CoordinatorStaff, session: SessionDep,
                       now: NowDep) -> Response:
    """Apply the import this session previewed, and note it on the feed."""
    token = fv.text(await request.form(), "token", 100)
    kept = _take(request, token, staff.id or 0)
    if kept is None:
        set_notice(request, "That preview has expired or was applied already. "
                            "Preview the feed again.")
        return RedirectResponse(LIST_PATH, status_code=303)
    pending, data = kept
    feed = await _feed_to_apply(session, staff, pending, now=now)
    if feed is None or feed.id is None:
        _forget(request, token)
        set_notice(request, f"There is already a feed called {pending.name}. "
                            "Add yours with another name.")
        return RedirectResponse(LIST_PATH, status_code=303)
    try:
        summary = await import_feed(session, data, source_name=feed.name, format=feed.format,
                                    timezone=feed.timezone, region=feed.region, now=now,
                                    preview=False)
    except FeedError as exc:
        raise HTTPException(400, f"This feed cannot be read: {exc}") from None
    _forget(request, token)
    await record_run(session, feed.id, now=now, result=summary.counts())
    await record_staff_action(session, staff_id=staff.id or 0, action="feed_import", now=now,
                              detail={"feed_id": feed.id, "new": pending.feed_id is None,
                                      **summary.counts()})
    return render(request, "staff/feeds/applied.html", {"feed": feed, "summary": summary})


async def _feed_to_apply(session: AsyncSession, staff: StaffUser, pending: Pending, *,
                         now: datetime) -> FeedSource | None:
    """Return the feed an import is for, adding it if new (None: its name was taken since)."""
    if pending.feed_id is not None:
        feed = await feed_for_staff(session, staff, pending.feed_id)
        if feed is None:
            raise HTTPException(404)
        return feed
    if await feed_named(session, pending.name) is not None:
        return None
    region = None if staff.role == StaffRole.ADMIN else staff.region
    return await add_feed(session, name=pending.name, url=pending.url, format=pending.format,
                          timezone=pending.timezone, region=region, created_by=staff.email,
                          now=now)
