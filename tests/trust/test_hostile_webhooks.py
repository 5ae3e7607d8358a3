"""Correctly signed but hostile requests to the webhooks: never a 5xx, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bot.channels.telegram import SECRET_HEADER
from tests.bot.conftest import AUTH_TOKEN, PHONE, PUBLIC, WEBHOOK_SECRET, Enrolled, Stack

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
SID = "SM" + "0123456789abcdef" * 2
# Any character a form or JSON can carry (not lone surrogates, which no encoder sends).
CHARS = st.characters(exclude_categories=["Cs"])
HOSTILE = st.one_of(
    st.text(CHARS, max_size=40),
    st.text(st.sampled_from("\x00\x01\x1b\x7f\u200b\u202e\ufeff\n\r\t 9"), max_size=30),
    st.integers(min_value=5000, max_value=20_000).map(lambda n: "9" * n),
    st.integers(min_value=100, max_value=20_000).map(lambda n: "A\x00é" * (n // 3)),
    st.sampled_from(["", " ", "0", "-1", "²³", "١٢٣", "1e9", "NaN", "30003\x00", "+44 7700",
                     "07700 900123", "SM" + "f" * 4000]),
)
SMS_FIELDS = ("From", "Body", "MessageSid", "SmsSid", "To", "AccountSid", "NumMedia")
STATUS_FIELDS = ("MessageSid", "SmsSid", "MessageStatus", "ErrorCode", "To", "From")


SEEN: list[int] = []  # every status answered, for the report (-s shows the tally)
REPORT_ONLY = os.environ.get("TRUST_FUZZ_REPORT") == "1"  # count 5xx instead of failing


def _check(response: httpx.Response) -> None:
    SEEN.append(response.status_code)
    if REPORT_ONLY:
        return
    assert response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text and "File \"" not in response.text


async def _post_signed(stack: Stack, path: str, pairs: list[tuple[str, str]],
                       content_type: str | None = None) -> httpx.Response:
    """Post form pairs (duplicates allowed) signed as Twilio signs the form we read."""
    url = PUBLIC + path
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, dict(pairs))
    body = urlencode(pairs).encode()
    headers = {"X-Twilio-Signature": signature,
               "Content-Type": content_type or "application/x-www-form-urlencoded"}
    stack.pause()
    return await _client(stack).post(url, content=body, headers=headers)


def _client(stack: Stack) -> httpx.AsyncClient:
    """Return a client that sees a crash as the 500 a provider would get, not an exception."""
    client = getattr(stack, "_raw_client", None)
    if client is None:
        client = httpx.AsyncClient(base_url=PUBLIC, transport=httpx.ASGITransport(
            stack.app, raise_app_exceptions=False))
        stack._raw_client = client  # type: ignore[attr-defined]
    return client


@pytest.fixture(autouse=True)
def _tally() -> Iterator[None]:
    """Print how many requests were made and how many got a 5xx."""
    SEEN.clear()
    yield
    print(f"\n{len(SEEN)} requests, {sum(s >= 500 for s in SEEN)} answered 5xx")


def _sms_params(overrides: dict[str, str], n: int) -> list[tuple[str, str]]:
    base = {"From": PHONE, "To": "+447700900001", "Body": "MENU",
            "MessageSid": f"SM{n:032x}", "AccountSid": "AC" + "0" * 32}
    return list({**base, **overrides}.items())


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(SMS_FIELDS), HOSTILE, max_size=4),
       duplicate=st.booleans())
async def test_hostile_signed_sms(stack: Stack, enrolled: Enrolled, fields: dict[str, str],
                                  duplicate: bool) -> None:
    """Whatever a signed SMS webhook carries, the answer is TwiML or a 4xx."""
    pairs = _sms_params(fields, len(stack.twilio.messages) + id(fields) % 10**9)
    if duplicate:
        pairs = pairs + [(k, v + "x") for k, v in pairs[:2]]
    _check(await _post_signed(stack, "/sms/inbound", pairs))


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(STATUS_FIELDS), HOSTILE, max_size=4),
       status=st.sampled_from(["failed", "undelivered", "delivered", "sent", "FAILED"]))
async def test_hostile_signed_status(stack: Stack, enrolled: Enrolled, fields: dict[str, str],
                                     status: str) -> None:
    """Whatever a signed status callback carries, the answer is 200 or a 4xx."""
    if not stack.twilio.messages:  # sent rows whose sids the callbacks may name
        await stack.sms(enrolled.code)
    sid = stack.twilio.messages[-1]["sid"]
    base = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": "30003"}
    _check(await _post_signed(stack, "/sms/status", list({**base, **fields}.items())))


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                      st.floats(), st.text(CHARS, max_size=30))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(CHARS, max_size=10), inner, max_size=4)),
    max_leaves=20)
BIG = st.one_of(st.integers(min_value=-10**30, max_value=10**30), st.sampled_from(
    [0, -1, 2**31, 2**63, 10**30, -10**30]))
NUMBER = st.one_of(st.floats(), BIG, st.text(CHARS, max_size=10), st.none())


def _message(draw: Any) -> dict[str, Any]:
    chat_id = draw(st.one_of(st.just(424242), BIG, st.text(CHARS, max_size=10)))
    user = {"id": chat_id, "is_bot": False, "first_name": draw(HOSTILE)}
    message: dict[str, Any] = {
        "message_id": draw(BIG), "date": draw(st.one_of(st.just(1_700_000_000), BIG)),
        "chat": {"id": chat_id, "type": draw(st.sampled_from(["private", "group", "x"])),
                 "first_name": draw(HOSTILE)},
        "from": user,
    }
    kind = draw(st.sampled_from(["text", "location", "caption", "junk"]))
    if kind == "text":
        message["text"] = draw(st.one_of(HOSTILE, st.just("/start " + draw(HOSTILE)), JSON))
    elif kind == "location":
        message["location"] = {"latitude": draw(NUMBER), "longitude": draw(NUMBER)}
    elif kind == "caption":
        message["caption"] = draw(HOSTILE)
    else:
        message.update(draw(st.dictionaries(st.text(CHARS, max_size=10), JSON, max_size=3)))
    return message


@st.composite
def updates(draw: Any) -> Any:
    """Return Telegram-shaped JSON with hostile values, or any JSON at all."""
    shape = draw(st.sampled_from(["message", "callback", "member", "json"]))
    update_id = draw(BIG)
    if shape == "message":
        return {"update_id": update_id, "message": _message(draw)}
    if shape == "callback":
        message = _message(draw)
        return {"update_id": update_id, "callback_query": {
            "id": draw(HOSTILE), "from": message["from"], "message": message,
            "chat_instance": draw(HOSTILE), "data": draw(st.one_of(HOSTILE, JSON))}}
    if shape == "member":
        message = _message(draw)
        return {"update_id": update_id, "my_chat_member": {
            "chat": message["chat"], "from": message["from"], "date": draw(BIG),
            "old_chat_member": {"status": "member", "user": message["from"]},
            "new_chat_member": {"status": draw(st.sampled_from(["kicked", "left", "?"])),
                                "user": message["from"]}}}
    return draw(JSON)


async def _post_update(stack: Stack, body: bytes, content_type: str = "application/json"
                       ) -> httpx.Response:
    stack.pause()
    return await _client(stack).post("/telegram/webhook", content=body, headers={
        SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": content_type})


@FUZZ
@given(update=updates())
async def test_hostile_telegram_updates(stack: Stack, enrolled: Enrolled, update: Any) -> None:
    """Whatever JSON carries the right secret, the answer is 200 or a 4xx."""
    body = json.dumps(update, ensure_ascii=False).encode("utf-8", "surrogatepass")
    _check(await _post_update(stack, body))


async def test_deeply_nested_and_odd_bodies(stack: Stack) -> None:
    """Nesting deeper than the parser's recursion, duplicate keys, wrong types: a 4xx."""
    bodies = [
        b"[" * 30_000 + b"]" * 30_000,
        b'{"update_id": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        b'{"update_id": 1, "update_id": 2, "message": {"chat": 1}, "message": 2}',
        b'{"update_id": 1' + b"0" * 5000 + b"}",
        b'{"update_id": 1e999}', b"\xff\xfe\x00", b"", b"null", b'"x\\u0000"',
        b'{"update_id": 5, "message": {"message_id": 1, "date": 1, "chat": {"id": 1, '
        b'"type": "private"}, "text": "a\\u0000b"}}',
    ]
    for body in bodies:
        _check(await _post_update(stack, body))
    _check(await _post_update(stack, b"update_id=1", "application/x-www-form-urlencoded"))


async def test_odd_signed_forms(stack: Stack, enrolled: Enrolled) -> None:
    """A signed form with a NUL-laden body, a multipart body, or JSON: 200 or a 4xx."""
    _check(await _post_signed(stack, "/sms/inbound",
                              _sms_params({"Body": "I used again\x00 last night"}, 1)))
    _check(await _post_signed(stack, "/sms/inbound", _sms_params({"Body": "x" * 20_000}, 2)))
    _check(await _post_signed(stack, "/sms/inbound", [], "application/json"))
    _check(await _post_signed(stack, "/sms/inbound", _sms_params({}, 3), "multipart/form-data"))
    _check(await _post_signed(stack, "/sms/status", [("ErrorCode", "9" * 5000),
                                                     ("MessageSid", SID),
                                                     ("MessageStatus", "failed")]))
