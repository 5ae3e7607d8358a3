"""Over-large bodies get 413 before anything reads them: no signature check, no form parse."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator

import httpx

from bot.web.limits import LARGE_PATHS, limit_for
from tests.bot.conftest import PUBLIC, Stack

TEN_MB = 10 * 1024 * 1024


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    chunk = b"Body=" + b"x" * (size - 5)
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


async def test_unsigned_ten_megabytes_refused_without_reading(stack: Stack) -> None:
    body = b"Body=" + b"x" * TEN_MB
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        response = await stack.client.post(f"{PUBLIC}/sms/inbound", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    print(f"\n10 MB declared POST: peak {(peak - before) / 1024:.0f} KiB above the start")
    assert peak - before < 1024 * 1024  # the 10 MB body was never copied in the app


async def test_chunked_body_stops_at_the_limit(stack: Stack) -> None:
    seen: list[int] = []

    async def counting() -> AsyncIterator[bytes]:
        async for chunk in _chunks(TEN_MB):
            seen.append(len(chunk))
            yield chunk

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        response = await stack.client.post(f"{PUBLIC}/sms/inbound", content=counting(),
                                           headers={"Content-Type":
                                                    "application/x-www-form-urlencoded"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    print(f"\nchunked 10 MB POST: peak {(peak - before) / 1024:.0f} KiB above the start")
    assert peak - before < 2 * 1024 * 1024
    assert stack.twilio.messages == []


async def test_telegram_webhook_too(stack: Stack) -> None:
    response = await stack.client.post(f"{PUBLIC}/telegram/webhook",
                                       content=b"[" * 100_000)
    assert response.status_code == 413


async def test_a_normal_sms_still_gets_through(stack: Stack) -> None:
    response = await stack.twilio.text_from("+447700900123", "hello " * 100)
    assert response.status_code == 200


async def test_bad_content_length_is_a_400(stack: Stack) -> None:
    transport = httpx.ASGITransport(stack.app)
    request = httpx.Request("POST", f"{PUBLIC}/sms/inbound", content=b"Body=1",
                            headers={"Content-Length": "abc"})
    response = await transport.handle_async_request(request)
    assert response.status_code == 400


def test_feeds_upload_allows_more() -> None:
    assert limit_for("/sms/inbound", 65536) == 65536
    assert limit_for("/staff/feeds/upload", 65536) == LARGE_PATHS[0][1]
    assert limit_for("/staff/feedsx", 65536) == 65536
