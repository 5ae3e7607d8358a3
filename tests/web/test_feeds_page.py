"""The Feeds page: add a feed by file or address, preview the diff, apply, refresh, scope."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.web.staff.feeds import MAX_UPLOAD
from storage.db import session_scope
from storage.models import AuditEvent, FeedSource, Meeting
from tests.auxil.web import read_page
from tests.meeting_finder.conftest import feeds_dir
from tests.web.conftest import Clock, StaffLogin

SUMMER = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)  # 12:00pm in London (BST)


def mg_row(slug: str, name: str, time: str = "19:00", day: int = 1,
           **extra: Any) -> dict[str, Any]:
    """Return one Meeting Guide row (day 1 = Monday), in London unless told."""
    return {"slug": slug, "name": name, "day": day, "time": time,
            "timezone": "Europe/London", "address": "1 High Street", "city": "Stoke-on-Trent",
            "postal_code": "ST1 1AA", "country": "UK", **extra}


def feed_bytes(*rows: dict[str, Any]) -> bytes:
    return json.dumps(list(rows)).encode()


class FeedServer:
    """A loopback web server answering each path with the (status, body) set for it."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                requests.append(self.path)
                status, body = routes.get(self.path, (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def closed_port_url() -> str:
    """Return a loopback address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.json"


def text_of(html: str) -> str:
    """Return a page's words, tags dropped and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def add_feed(client: httpx.AsyncClient, *, name: str = "Stoke meetings",
                   url: str = "", upload: bytes | None = None, filename: str = "feed.json",
                   timezone: str = "Europe/London", format: str = "auto") -> httpx.Response:
    """Fill in "Add a feed" by its labels and press the button, as a browser does."""
    page = read_page((await client.get("/staff/feeds")).text)
    assert "Preview the import" in page.buttons
    data = {"csrf_token": page.csrf, page.labels["Name"]: name,
            page.labels["Feed address"]: url, page.labels["Time zone"]: timezone,
            "format": format}
    files = {page.labels["Upload a file"]: (filename if upload is not None else "",
                                            upload or b"", "application/octet-stream")}
    return await client.post("/staff/feeds", data=data, files=files)


async def apply(client: httpx.AsyncClient, preview: httpx.Response) -> httpx.Response:
    """Press "Apply this import" on a preview page."""
    page = read_page(preview.text)
    assert page.h1 == "Preview" and "Apply this import" in page.buttons
    token = re.search(r'name="token" value="([^"]+)"', preview.text)
    assert token is not None
    return await client.post("/staff/feeds/apply",
                             data={"csrf_token": page.csrf, "token": token.group(1)})


async def stored(engine: AsyncEngine) -> tuple[list[Meeting], list[FeedSource]]:
    async with session_scope(engine) as session:
        meetings = list((await session.exec(select(Meeting).order_by(Meeting.slug))).all())
        feeds = list((await session.exec(select(FeedSource))).all())
        return meetings, feeds


async def test_upload_previews_then_applies_a_real_feed(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    me = await staff_login(client, role="coordinator", region="Kansas")
    data = (feeds_dir() / "spec_kansas_city_data_sample.json").read_bytes()
    preview = await add_feed(client, name="Kansas City", upload=data,
                             timezone="America/Chicago")
    assert preview.status_code == 200, text_of(preview.text)
    words = text_of(preview.text)
    assert "Nothing has been saved yet" in words
    for heading in ("Added (", "Updated (0)", "Cancelled (0)", "Skipped ("):
        assert heading in words
    assert await stored(engine) == ([], [])  # nothing saved before Apply

    done = await apply(client, preview)
    assert read_page(done.text).h1 == "Import applied"
    assert "People with reminders for changed meetings will be told" in text_of(done.text)
    meetings, feeds = await stored(engine)
    [feed] = feeds
    assert feed.url is None and feed.region == "Kansas" and feed.timezone == "America/Chicago"
    assert feed.format == "meeting-guide" and feed.created_by == me.email
    assert feed.last_result is not None and feed.last_result["added"] > 0
    assert len(meetings) >= feed.last_result["added"]
    assert {m.source for m in meetings} == {"Kansas City"}
    assert {m.region for m in meetings} == {"Kansas"}  # rows named none: the coordinator's
    async with session_scope(engine) as session:
        audit = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "feed_import"))).one()
    assert audit.actor == f"staff:{me.staff_id}" and audit.detail is not None
    assert audit.detail["feed_id"] == feed.id and audit.detail["new"] is True


async def test_new_file_preview_lists_what_changed_and_why_rows_are_skipped(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    first = feed_bytes(mg_row("tue", "Tuesday group"), mg_row("wed", "Wednesday group", day=3))
    await apply(client, await add_feed(client, name="Stoke", upload=first))
    [feed] = (await stored(engine))[1]

    second = feed_bytes(mg_row("tue", "Tuesday group", time="19:30"), {"slug": "x", "day": 2},
                        mg_row("thu", "Thursday group", day=4))
    page = read_page((await client.get("/staff/feeds")).text)
    field = page.labels["New file for Stoke"]
    preview = await client.post(f"/staff/feeds/{feed.id}/refresh",
                                data={"csrf_token": page.csrf},
                                files={field: ("new.json", second, "application/json")})
    words = text_of(preview.text)
    assert "Added (1) Thursday group, Thursday 19:00 (Europe/London)" in words
    assert "Updated (1) Tuesday group, Monday 19:30" in words
    assert "Start time: 19:00 → 19:30" in words
    assert "Cancelled (1) Wednesday group, Wednesday 19:00" in words
    assert "Skipped (1) x: no name" in words
    meetings = {m.slug: m for m in (await stored(engine))[0]}
    assert str(meetings["tue"].start_time) == "19:00:00" and meetings["wed"].status == "active"

    done = await apply(client, preview)
    assert "1 added, 1 updated, 1 cancelled, 1 skipped" in text_of(done.text)
    meetings = {m.slug: m for m in (await stored(engine))[0]}
    assert str(meetings["tue"].start_time) == "19:30:00"
    assert meetings["wed"].status == "cancelled" and "thu" in meetings


async def test_address_feed_fetches_from_the_server_and_refreshes(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine,
    feed_server: FeedServer, clock: Clock
) -> None:
    clock.now = SUMMER
    await staff_login(client, role="coordinator", region="Stoke")
    feed_server.routes["/meetings.json"] = (200, feed_bytes(mg_row("a", "Group A")))
    preview = await add_feed(client, name="Online list", url=feed_server.url("/meetings.json"))
    assert "Added (1) Group A" in text_of(preview.text)
    await apply(client, preview)
    assert feed_server.requests == ["/meetings.json"]  # applied what was previewed

    listing = text_of((await client.get("/staff/feeds")).text)
    assert "1 Jul 2026, 12:00pm" in listing  # the last run, in London's summer time
    assert "1 added, 0 updated, 0 cancelled, 0 skipped" in listing

    feed_server.routes["/meetings.json"] = (200, feed_bytes(mg_row("a", "Group A renamed")))
    page = read_page((await client.get("/staff/feeds")).text)
    assert "Refresh now Online list" in page.buttons
    [feed] = (await stored(engine))[1]
    preview = await client.post(f"/staff/feeds/{feed.id}/refresh",
                                data={"csrf_token": page.csrf})
    assert "Name: Group A → Group A renamed" in text_of(preview.text)
    await apply(client, preview)
    assert [m.name for m in (await stored(engine))[0]] == ["Group A renamed"]

    feed_server.routes["/meetings.json"] = (500, b"oops")
    failed = await client.post(f"/staff/feeds/{feed.id}/refresh",
                               data={"csrf_token": page.csrf})
    assert failed.status_code == 303
    listing = text_of((await client.get("/staff/feeds")).text)
    assert "Online list: Could not fetch the feed: the server answered HTTP 500" in listing
    assert "Failed: Could not fetch the feed: the server answered HTTP 500" in listing


@pytest.mark.parametrize(("fields", "label", "message"), [
    ({"url": "not a web address"}, "Feed address", "Enter a feed address starting with"),
    ({"url": "ftp://example.org/feed.json"}, "Feed address", "Enter a feed address"),
    ({}, "Feed address", "Enter a feed address, or choose a file"),
    ({"url": "https://example.org/f.json", "upload": b"[]"}, "Feed address",
     "Give a feed address or a file, not both"),
    ({"upload": b"<html>hello</html>", "format": "meeting-guide"}, "Upload a file",
     "This is not a feed we can read: not valid JSON"),
    ({"upload": b"hello,world\n1,2\n"}, "Upload a file", "needs a header row"),
    ({"upload": b"<!DOCTYPE html><p>hi</p>"}, "Upload a file", "a web page (HTML), not a feed"),
    ({"upload": b"x" * (MAX_UPLOAD + 1)}, "Upload a file", "The file must be smaller than 4 MB"),
    ({"upload": b"[]", "timezone": "Mars/Olympus"}, "Time zone", "Time zone must be a zone"),
    ({"upload": b"[]", "timezone": "../../etc/passwd"}, "Time zone", "Time zone must be"),
    ({"upload": b"[]", "timezone": ""}, "Time zone", "Enter the time zone"),
    ({"upload": b"[]", "name": ""}, "Name", "Enter a name for the feed"),
    ({"upload": b"[]", "name": "bad\x07name"}, "Name", "without control characters"),
    ({"upload": b"[]", "name": "x" * 201}, "Name", "200 characters or fewer"),
])
async def test_bad_input_is_shown_beside_the_field(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine,
    fields: dict[str, Any], label: str, message: str
) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    answer = await add_feed(client, **{"name": "Stoke 🙂", **fields})
    assert answer.status_code == 400
    page = read_page(answer.text)
    assert page.h1 == "Feeds" and message in page.error_for(label), page.field_errors
    assert (await stored(engine))[1] == []


async def test_a_body_over_the_request_limit_is_refused(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    answer = await add_feed(client, upload=b"[" + b" " * (6 * 1024 * 1024) + b"]")
    assert answer.status_code == 413 and (await stored(engine))[1] == []


async def test_unreachable_address_and_duplicate_name(
    client: httpx.AsyncClient, staff_login: StaffLogin, feed_server: FeedServer
) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    answer = await add_feed(client, url=closed_port_url())
    assert answer.status_code == 400
    error = read_page(answer.text).error_for("Feed address")
    assert error == "Could not fetch the feed: could not connect to the server"
    assert "Traceback" not in answer.text
    missing = await add_feed(client, url=feed_server.url("/gone.json"))
    assert "the server answered HTTP 404" in read_page(missing.text).error_for("Feed address")

    await apply(client, await add_feed(client, name="Stoke", upload=feed_bytes()))
    again = await add_feed(client, name="STOKE", upload=feed_bytes())
    assert "There is already a feed called STOKE" in read_page(again.text).error_for("Name")
    assert read_page(again.text).value_of("Name") == "STOKE"  # what was typed is kept


async def test_a_preview_is_applied_once_and_only_by_its_session(
    client: httpx.AsyncClient, new_client: Any, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    await staff_login(client, role="coordinator", region="Stoke")
    preview = await add_feed(client, upload=feed_bytes(mg_row("a", "Group A")))
    other = await new_client()
    await staff_login(other, role="coordinator", region="Stoke", email="other@example.org")
    token = re.search(r'name="token" value="([^"]+)"', preview.text)
    assert token is not None
    page = read_page((await other.get("/staff/feeds")).text)
    stolen = await other.post("/staff/feeds/apply",
                              data={"csrf_token": page.csrf, "token": token.group(1)})
    assert stolen.status_code == 303 and (await stored(engine))[1] == []
    assert (await apply(client, preview)).status_code == 200
    twice = await apply(client, preview)
    assert twice.status_code == 303
    notice = read_page((await client.get("/staff/feeds")).text).notice
    assert "That preview has expired or was applied already" in notice
    assert len((await stored(engine))[0]) == 1


async def test_region_scope_and_roles(
    new_client: Any, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    stoke, leeds, admin, champion = [await new_client() for _ in range(4)]
    await staff_login(stoke, role="coordinator", region="Stoke", email="s@example.org")
    await staff_login(leeds, role="coordinator", region="Leeds", email="l@example.org")
    await staff_login(admin, role="admin", email="a@example.org")
    await staff_login(champion, role="champion")
    await apply(stoke, await add_feed(stoke, name="Stoke feed", upload=feed_bytes()))
    [feed] = (await stored(engine))[1]

    assert "Stoke feed" in text_of((await admin.get("/staff/feeds")).text)
    assert "Stoke feed" not in text_of((await leeds.get("/staff/feeds")).text)
    page = read_page((await leeds.get("/staff/feeds")).text)
    refused = await leeds.post(f"/staff/feeds/{feed.id}/refresh",
                               data={"csrf_token": page.csrf})
    assert refused.status_code == 404
    assert (await champion.get("/staff/feeds")).status_code == 403
    no_token = await stoke.post(f"/staff/feeds/{feed.id}/refresh", data={})
    assert no_token.status_code == 403  # CSRF
