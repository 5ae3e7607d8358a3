"""The daily feed refresh: fetch each feed with an address from a loopback server, import it,
note the counts or the error; never twice at once; registered on the worker's clock."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.feed_refresh import FRESH_FOR, detect_format, read_feed, refresh_all
from scheduler.worker import build_scheduler
from storage.db import session_scope
from storage.feeds_q import add_feed
from storage.models import FeedSource, Meeting

NOW = datetime(2026, 6, 1, 2, 20, tzinfo=UTC)  # 03:20 in London (BST)


def rows(*names: str, time: str = "19:00") -> bytes:
    return json.dumps([{"slug": n.lower(), "name": n, "day": 1, "time": time,
                        "address": "1 High Street, Stoke-on-Trent ST1 1AA"}
                       for n in names]).encode()


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
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    fake = FeedServer()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


async def make_feed(engine: AsyncEngine, name: str, url: str | None,
                    region: str | None = "Stoke") -> int:
    async with session_scope(engine) as session:
        feed = await add_feed(session, name=name, url=url, format="auto",
                              timezone="Europe/London", region=region,
                              created_by="c@example.org", now=NOW - timedelta(days=3))
        assert feed.id is not None
        return feed.id


async def feeds(engine: AsyncEngine) -> dict[str, FeedSource]:
    async with session_scope(engine) as session:
        return {f.name: f for f in await session.exec(select(FeedSource))}


async def meetings(engine: AsyncEngine) -> dict[str, Meeting]:
    async with session_scope(engine) as session:
        return {m.slug: m for m in await session.exec(select(Meeting))}


async def test_refresh_imports_each_address_and_notes_the_result(
    engine: AsyncEngine, server: FeedServer
) -> None:
    server.routes["/a.json"] = (200, rows("Alpha", "Beta"))
    await make_feed(engine, "A", server.url("/a.json"))
    await make_feed(engine, "Down", server.url("/missing.json"))
    await make_feed(engine, "Uploaded", None)

    counts = await refresh_all(engine, now=NOW)
    assert counts == {"refreshed": 1, "failed": 1, "not_due": 0}
    assert sorted(server.requests) == ["/a.json", "/missing.json"]
    found = await feeds(engine)
    assert found["A"].last_run_at == NOW and found["A"].last_error is None
    assert found["A"].last_result == {"total_rows": 2, "added": 2, "updated": 0,
                                      "unchanged": 0, "skipped": 0, "cancelled": 0}
    assert found["Down"].last_run_at == NOW and found["Down"].last_result is None
    assert found["Down"].last_error is not None
    assert "the server answered HTTP 404" in found["Down"].last_error
    assert found["Uploaded"].last_run_at is None
    stored = await meetings(engine)
    assert {m.source for m in stored.values()} == {"A"}
    assert {m.region for m in stored.values()} == {"Stoke"}  # the feed's, as rows had none
    assert {m.timezone for m in stored.values()} == {"Europe/London"}


async def test_a_day_later_changes_arrive_and_errors_keep_the_last_counts(
    engine: AsyncEngine, server: FeedServer
) -> None:
    server.routes["/a.json"] = (200, rows("Alpha", "Beta"))
    await make_feed(engine, "A", server.url("/a.json"))
    await refresh_all(engine, now=NOW)

    server.routes["/a.json"] = (200, rows("Alpha", time="19:30"))
    soon = NOW + FRESH_FOR - timedelta(minutes=1)
    assert await refresh_all(engine, now=soon) == {"refreshed": 0, "failed": 0, "not_due": 1}
    tomorrow = NOW + timedelta(days=1)
    assert (await refresh_all(engine, now=tomorrow))["refreshed"] == 1
    stored = await meetings(engine)
    assert str(stored["alpha"].start_time) == "19:30:00"
    assert stored["beta"].status == "cancelled" and stored["beta"].status_changed_at == tomorrow
    assert (await feeds(engine))["A"].last_result == {
        "total_rows": 1, "added": 0, "updated": 1, "unchanged": 0, "skipped": 0, "cancelled": 1}

    server.routes["/a.json"] = (200, b"<html>maintenance</html>")
    later = tomorrow + timedelta(days=1)
    assert (await refresh_all(engine, now=later))["failed"] == 1
    feed = (await feeds(engine))["A"]
    assert feed.last_error == "this is a web page (HTML), not a feed"
    assert feed.last_run_at == later and feed.last_result is not None
    assert feed.last_result["updated"] == 1  # the last good run's counts stay


async def test_an_empty_answer_cancels_nothing(engine: AsyncEngine, server: FeedServer) -> None:
    server.routes["/a.json"] = (200, rows("Alpha"))
    await make_feed(engine, "A", server.url("/a.json"))
    await refresh_all(engine, now=NOW)
    server.routes["/a.json"] = (200, b"[]")
    await refresh_all(engine, now=NOW + timedelta(days=1))
    assert (await meetings(engine))["alpha"].status == "active"
    error = (await feeds(engine))["A"].last_error
    assert error == "the feed had no meetings in it, so nothing was changed"


async def test_unreachable_server_is_noted_without_a_trace(engine: AsyncEngine) -> None:
    await make_feed(engine, "Nowhere", "http://127.0.0.1:9/feed.json")
    async with httpx.AsyncClient(timeout=2) as client:
        assert (await refresh_all(engine, now=NOW, client=client))["failed"] == 1
    error = (await feeds(engine))["Nowhere"].last_error
    assert error == "cannot fetch http://127.0.0.1:9/feed.json: could not connect to the server"


async def test_two_workers_at_once_fetch_each_feed_once(
    engine: AsyncEngine, server: FeedServer
) -> None:
    server.routes["/a.json"] = (200, rows("Alpha"))
    server.routes["/b.json"] = (200, rows("Bravo"))
    await make_feed(engine, "A", server.url("/a.json"))
    await make_feed(engine, "B", server.url("/b.json"))
    first, second = await asyncio.gather(refresh_all(engine, now=NOW),
                                         refresh_all(engine, now=NOW))
    assert first["refreshed"] + second["refreshed"] == 2
    assert first["not_due"] + second["not_due"] == 2
    assert sorted(server.requests) == ["/a.json", "/b.json"]


async def test_csv_and_json_are_told_apart() -> None:
    assert detect_format(b"\xef\xbb\xbf  [{}]") == "meeting-guide"
    assert detect_format(b"slug,name,day\n") == "csv"
    sheet = await read_feed(b"slug,name,day,time\nx,Group X,Monday,19:00\n", region="Leeds")
    assert sheet.format == "csv" and sheet.phone_region == "GB"
    assert sheet.rows[0]["day"] == 1 and sheet.rows[0]["region"] == "Leeds"
    named = await read_feed(b'[{"slug": "y", "region": "York"}]', region="Leeds")
    assert named.rows == [{"slug": "y", "region": "York"}]  # a row's own region is kept


async def test_the_worker_refreshes_feeds_daily_in_london_time(engine: AsyncEngine) -> None:
    scheduler = build_scheduler(engine, {})
    job = scheduler.get_job("feeds")
    assert job is not None and isinstance(job.trigger, CronTrigger)
    assert str(job.trigger.timezone) == "Europe/London"
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["hour"], fields["minute"], fields["day"]) == ("3", "20", "*")
    first = job.trigger.get_next_fire_time(None, datetime(2026, 6, 1, 0, 0, tzinfo=UTC))
    assert first == datetime(2026, 6, 1, 3, 20, tzinfo=first.tzinfo)
    assert first.utcoffset() == timedelta(hours=1)
