"""A fake Twilio REST API: Messages.json (create and list) with real-shaped JSON, errors,
status callbacks, slow and unreadable answers.

WhatsApp goes through the same resource (`whatsapp:` addresses, a body or a ContentSid with
ContentVariables, recorded on the message). It also plays the phone network: `text_from()`
and `whatsapp_from()` post an inbound SMS or WhatsApp message to our webhook and
`report()` posts a status callback, both signed with the twilio library's RequestValidator,
exactly as Twilio signs them.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "UNSTOP", "YES"}
ERRORS = {
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20404: (404, "The requested resource {path} was not found"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21619: (400, "A text message body or media urls must be specified."),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
    63003: (400, "Channel could not find To address"),
    30400: (400, "Parameters are not valid"),
}
_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMN"
           "OPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_ESCAPED = set("^{}\\[~]|€\f")  # sent as ESC and a character: two septets
_PRIVATE = {"n", "status_callback", "content_sid", "content_variables"}  # not shown by Twilio
WHATSAPP = "whatsapp:"


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _now() -> datetime:
    return datetime.now(UTC)


def count_segments(body: str) -> int:
    """Count segments as a handset splits them: an escape or a surrogate pair stays whole."""
    if set(body) <= _GSM | _GSM_ESCAPED:
        units = [2 if ch in _GSM_ESCAPED else 1 for ch in body]
        single, multi = 160, 153
    else:
        units = [len(ch.encode("utf-16-le")) // 2 for ch in body]
        single, multi = 70, 67
    if sum(units) <= single:
        return 1
    parts = [0]
    for size in units:
        if parts[-1] + size > multi:
            parts.append(0)
        parts[-1] += size
    return len(parts)


@dataclass
class FakeTwilio:
    """Twilio for one account: records sent messages, signs what it posts to us."""

    account_sid: str
    auth_token: str
    webhook_url: str = "http://127.0.0.1:8000/sms/inbound"  # as set on the number in Twilio
    our_number: str = "+447700900001"
    default_opt_out: bool = False  # Twilio's own STOP handling (on for real numbers)
    client: httpx.AsyncClient | None = None  # how it reaches our app
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)  # create forms
    queries: list[dict[str, str]] = field(default_factory=list)  # list query strings
    opted_out: set[str] = field(default_factory=set)
    invalid_numbers: set[str] = field(default_factory=set)  # 21211
    landlines: set[str] = field(default_factory=set)  # 21614
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # next creates
    errors: list[dict[str, Any]] = field(default_factory=list)  # error bodies we answered
    network_replies: list[dict[str, Any]] = field(default_factory=list)  # Twilio's own texts
    auto_deliver: float | None = None  # report "delivered" this many seconds after a send
    answer_delay: float = 0  # a create is recorded at once but answered this much later
    malformed_next: int = 0  # the next creates are recorded but answered 201 with broken JSON
    whatsapp_number: str = "+447700900002"  # our WhatsApp sender, as the person sees it
    contents: dict[str, str] = field(default_factory=dict)  # ContentSid -> "Hi {{1}}" texts
    now: Callable[[], datetime] = _now  # Twilio's clock, for date_created
    redactions: list[str] = field(default_factory=list)  # sids whose body we were told to blank
    redact_failures: list[int] = field(default_factory=list)  # error codes for the next ones
    _counter: Any = field(default_factory=lambda: itertools.count(1))
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def routes(self) -> list[Route]:
        """Return the routes of the Messages resource."""
        path = f"/{API_VERSION}/Accounts/{{account}}/Messages.json"
        one = f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}.json"
        return [Route(path, self._create, methods=["POST"]),
                Route(path, self._list, methods=["GET"]),
                Route(one, self._redact, methods=["POST"])]

    @property
    def app(self) -> Starlette:
        """Return the ASGI app serving the Messages resource."""
        return Starlette(routes=self.routes)

    def fail_next(self, code: int, *, retry_after: int | None = None) -> None:
        """Make the next Messages create fail with this Twilio error code."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.failures.append((code, headers))

    def seen(self, number: str) -> list[str]:
        """Return every text the phone with this number received, in order."""
        texts = [(m["n"], m["body"]) for m in self.messages if m["to"] == number]
        texts += [(m["n"], m["body"]) for m in self.network_replies if m["to"] == number]
        return [body for _n, body in sorted(texts)]

    def _error(self, code: int, headers: dict[str, str] | None = None, **values: str
               ) -> JSONResponse:
        status, message = ERRORS[code]
        body = {"code": code, "message": message.format(**values),
                "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        self.errors.append(body)
        return JSONResponse(body, status_code=status, headers=headers)

    def _authorised(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (request.headers.get("authorization") == expected
                and request.path_params["account"] == self.account_sid)

    async def _create(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        self.requests.append(form)
        if not self._authorised(request):
            return self._error(20003)
        if self.failures:
            code, headers = self.failures.pop(0)
            return self._error(code, headers, to=form.get("To", ""))
        to = form.get("To", "")
        number = to.removeprefix(WHATSAPP)
        sender = form.get("From")
        if sender is not None and to.startswith(WHATSAPP) != sender.startswith(WHATSAPP):
            return self._error(21910, to=to)  # a WhatsApp message needs both ends on it
        if number in self.invalid_numbers or not number.startswith("+"):
            return self._error(21211, to=to)
        if to.startswith(WHATSAPP) and bool(form.get("Body")) == bool(form.get("ContentSid")):
            return self._error(21619)  # exactly one of Body and ContentSid
        if to in self.landlines:
            return self._error(21614)
        if to in self.opted_out:
            return self._error(21610)
        now = format_datetime(self.now().astimezone(UTC)).replace("-0000", "+0000")
        sid = _sid("SM")
        service = form.get("MessagingServiceSid")
        message = {
            "account_sid": self.account_sid, "api_version": API_VERSION,
            "body": form.get("Body", ""), "date_created": now, "date_sent": None,
            "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": None if service else form.get("From"),
            "messaging_service_sid": service, "num_media": "0",
            "num_segments": str(count_segments(form.get("Body", ""))), "price": None,
            "price_unit": "USD", "sid": sid, "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{self.account_sid}/"
                                          f"Messages/{sid}/Media.json"},
            "to": to, "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        if form.get("ContentSid"):  # Twilio fills the approved template in
            variables = json.loads(form.get("ContentVariables") or "{}")
            message["body"] = self.render_content(form["ContentSid"], variables)
            message["num_segments"] = "1"
        self.messages.append({**message, "n": next(self._counter),
                              "status_callback": form.get("StatusCallback"),
                              "content_sid": form.get("ContentSid"),
                              "content_variables": form.get("ContentVariables")})
        if self.auto_deliver is not None and form.get("StatusCallback"):
            task = asyncio.create_task(self._deliver_later(sid, self.auto_deliver))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        if self.malformed_next > 0:
            self.malformed_next -= 1
            return Response(json.dumps(message)[:40], status_code=201,
                            media_type="application/json")  # cut off mid-answer
        return JSONResponse(message, status_code=201)

    async def _redact(self, request: Request) -> Response:
        """Update one Message: Twilio only takes an empty Body there (redaction)."""
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not self._authorised(request):
            return self._error(20003)
        if self.redact_failures:
            return self._error(self.redact_failures.pop(0), path=request.url.path)
        sid = request.path_params["sid"]
        message = next((m for m in self.messages if m["sid"] == sid), None)
        if message is None:
            return self._error(20404, path=request.url.path)
        if form.get("Body") != "" or "Status" in form:
            return self._error(30400)
        message["body"] = ""
        message["date_updated"] = format_datetime(self.now().astimezone(UTC)).replace(
            "-0000", "+0000")
        self.redactions.append(sid)
        return JSONResponse({k: v for k, v in message.items() if k not in _PRIVATE})

    async def _list(self, request: Request) -> JSONResponse:
        query = request.query_params
        self.queries.append(dict(query))
        if not self._authorised(request):
            return self._error(20003)
        size = int(query["PageSize"]) if query.get("PageSize", "").isdigit() else 50
        size = min(max(size, 1), 1000)
        page = int(query["Page"]) if query.get("Page", "").isdigit() else 0
        rows = sorted((m for m in self.messages
                       if "To" not in query or m.get("to") == query["To"]),
                      key=lambda m: m.get("n", 0), reverse=True)  # newest first, as Twilio
        start = page * size
        token = query.get("PageToken", "")
        after = [i for i, m in enumerate(rows) if "PA" + str(m.get("sid")) == token]
        if after:  # the token names the last message of the page before
            start = after[0] + 1
        shown = rows[start:start + size]

        def uri(number: int, token: str | None = None) -> str:
            params = {k: query[k] for k in ("To",) if k in query}
            params |= {"PageSize": str(size), "Page": str(number)}
            if token:
                params["PageToken"] = token
            return f"{request.url.path}?{urlencode(params)}"

        more = start + size < len(rows)
        return JSONResponse({
            "end": start + max(len(shown) - 1, 0), "first_page_uri": uri(0),
            "messages": [{k: v for k, v in m.items() if k not in _PRIVATE} for m in shown],
            "next_page_uri": uri(page + 1, "PA" + shown[-1]["sid"]) if more else None,
            "page": page, "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": start, "uri": uri(page, token or None),
        })

    # Playing the network: posts to our app, signed as Twilio signs them -------------------

    async def _post_signed(self, url: str, params: dict[str, str]) -> httpx.Response:
        assert self.client is not None, "FakeTwilio.client must reach our app"
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return await self.client.post(url, data=params,
                                      headers={"X-Twilio-Signature": signature})

    async def text_from(self, number: str, body: str, *, sid: str | None = None
                        ) -> httpx.Response:
        """Deliver an SMS from a phone to our webhook, as Twilio would."""
        word = "".join(ch for ch in body if ch.isalpha()).upper()
        if self.default_opt_out and word in STOP_WORDS:
            self.opted_out.add(number)
            self._network_reply(number, "You have successfully been unsubscribed. You will "
                                        "not receive any more messages from this number. "
                                        "Reply START to resubscribe.")
        elif self.default_opt_out and word in START_WORDS and number in self.opted_out:
            self.opted_out.discard(number)
            self._network_reply(number, "You have successfully been re-subscribed to "
                                        "messages from this number. Reply HELP for help. "
                                        "Reply STOP to unsubscribe.")
        sid = sid or _sid("SM")
        params = {
            "ToCountry": "GB", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0",
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
            "FromCity": "", "Body": body, "FromCountry": "GB", "To": self.our_number,
            "ToZip": "", "NumSegments": str(count_segments(body)), "MessageSid": sid,
            "AccountSid": self.account_sid, "From": number, "ApiVersion": API_VERSION,
        }
        return await self._post_signed(self.webhook_url, params)

    async def whatsapp_from(self, number: str, body: str, *, sid: str | None = None
                            ) -> httpx.Response:
        """Deliver a WhatsApp message from a phone to our webhook, as Twilio would."""
        sid = sid or _sid("SM")
        params = {
            "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": "Sam", "MessageType": "text",
            "SmsSid": sid, "WaId": number.lstrip("+"), "SmsStatus": "received", "Body": body,
            "To": WHATSAPP + self.whatsapp_number, "NumSegments": "1", "ReferralNumMedia": "0",
            "MessageSid": sid, "AccountSid": self.account_sid, "From": WHATSAPP + number,
            "ApiVersion": API_VERSION,
        }
        return await self._post_signed(self.webhook_url, params)

    def render_content(self, content_sid: str, variables: dict[str, str]) -> str:
        """Return an approved template as the phone shows it, its {{n}} filled in."""
        text = self.contents.get(content_sid, f"[{content_sid}]")
        for n, value in variables.items():
            text = text.replace("{{" + str(n) + "}}", str(value))
        return text

    async def _deliver_later(self, sid: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.report(sid, "delivered")

    def _network_reply(self, number: str, body: str) -> None:
        self.network_replies.append({"to": number, "body": body, "n": next(self._counter)})

    async def report(self, sid: str, status: str, *, error_code: int | None = None
                     ) -> httpx.Response:
        """Post the status callback for a message we sent, as Twilio would."""
        message = next(m for m in self.messages if m["sid"] == sid)
        params = {
            "SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": message["to"],
            "MessageSid": sid, "AccountSid": self.account_sid,
            "From": message["from"] or self.our_number, "ApiVersion": API_VERSION,
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        message["status"] = status
        return await self._post_signed(message["status_callback"], params)
