"""SMS through Twilio: the sender, webhook authentication and parsing, error codes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import phonenumbers
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.channels import PROVIDER_LIMITS
from bot.channels.render import render_sms, sms_segments
from bot.config import Settings
from bot.logs import sensitive
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.sender import OutgoingMessage, SendResult
from storage.models import IdentityStatus

logger = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
STATUS_PATH = "/sms/status"
INBOUND_PATH = "/sms/inbound"
OPTED_OUT_CODES = frozenset({21610})  # recipient texted STOP to our number
UNREACHABLE_CODES = frozenset({21211, 21614, 30003, 30004, 30005, 30006})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# What we store and show for a Twilio error code. Twilio's own message is never kept: it can
# quote the number ("The 'To' number +447... is not a valid phone number.").
ERROR_REASONS = {
    20003: "authentication failed",
    21211: "invalid number",
    21408: "region not enabled",
    21610: "recipient unsubscribed",
    21612: "route not available",
    21614: "not a mobile number",
    30003: "handset unreachable",
    30004: "message blocked",
    30005: "unknown number",
    30006: "landline or unreachable carrier",
}
# What a webhook field may hold: Twilio's codes are at most six digits and its SIDs two letters
# and 32 hex digits; a field over MAX_FIELD characters is cut (an SMS body is at most 1,600).
TWILIO_CODE = re.compile(r"[0-9]{1,6}")
TWILIO_SID = re.compile(r"[A-Za-z0-9]{2,64}")
MAX_FIELD = 5000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A lookup reads this many of the number's newest messages, this many a page.
LOOKUP_LIMIT = 50
LOOKUP_PAGE_SIZE = 20
# How far Twilio's clock may lag ours. Kept small on purpose: an identical text sent to the
# same number just before this claim (MENU twice) belongs to an earlier row, and taking it
# for this one would lose a reply, while missing our own only sends it twice.
LOOKUP_SKEW = timedelta(seconds=3)
LOOKUP_WINDOW = timedelta(days=1)  # how far back to look when the claim time is unknown
# Errors raised before the request left this machine: Twilio certainly does not have it.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError,
               httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def normalise_number(raw: str, region: str = "GB") -> str | None:
    """Return a phone number as E.164 (UK by default), or None if it cannot be one."""
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def redact(number: str | None) -> str:
    """Hide all but the last three digits of a number, for logs."""
    return f"***{number[-3:]}" if number else "-"


def identity_status_for(code: int | None) -> IdentityStatus | None:
    """Say what a Twilio error code means for the number, if anything."""
    if code in OPTED_OUT_CODES:
        return IdentityStatus.OPTED_OUT
    if code in UNREACHABLE_CODES:
        return IdentityStatus.UNREACHABLE
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = headers.get("date")
    base = parsedate_to_datetime(date) if date else None
    return max(0.0, (when - base).total_seconds()) if base else None


class _RetryLater(Exception):
    """The Twilio API said try again (429 or 5xx), maybe with Retry-After."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"twilio http {status}")
        self.status = status
        self.retry_after = retry_after


class _Unreadable(Exception):
    """The Twilio API said yes (2xx) in a body that is not a JSON object."""

    def __init__(self, status: int) -> None:
        super().__init__(f"twilio http {status}: unreadable answer")
        self.status = status


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _transient(exc: Exception, *, sending: bool) -> TransientSendError:
    """Turn an HTTP failure into ours; when sending, say whether Twilio may have the request."""
    if isinstance(exc, _RetryLater):
        return TransientSendError(str(exc), code=str(exc.status), retry_after=exc.retry_after)
    if isinstance(exc, _Unreadable):
        return TransientSendError(str(exc), code=str(exc.status), maybe_sent=sending)
    return TransientSendError(f"twilio unreachable: {type(exc).__name__}",
                              maybe_sent=sending and not isinstance(exc, _NEVER_SENT))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HttpxTwilioClient(AsyncHttpClient):
    """The twilio library's async HTTP client, on httpx, pointed at a configurable API base."""

    def __init__(
        self,
        *,
        api_base_url: str = TWILIO_API,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), True, timeout)
        self.api_base_url = api_base_url.rstrip("/")
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout,
                                         limits=PROVIDER_LIMITS)

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the twilio interface)
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Make one request; raise _RetryLater for 429 and 5xx, _Unreadable for a bad 2xx."""
        if uri.startswith(TWILIO_API):
            uri = self.api_base_url + uri[len(TWILIO_API):]
        response = await self._client.request(
            method, uri, params=params, data=data, headers=headers,  # type: ignore[arg-type]
            auth=auth, timeout=timeout or self.timeout, follow_redirects=allow_redirects,
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryLater(response.status_code, _retry_after(response.headers))
        ok = 200 <= response.status_code < 300
        if ok and response.status_code != 204 and not _is_json_object(response.text):
            raise _Unreadable(response.status_code)
        return TwilioResponse(response.status_code, response.text, dict(response.headers))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


@dataclass
class TwilioSender:
    """Send SMS through the Twilio Messages API, asking for status callbacks."""

    client: Client
    status_callback: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    channel: str = "sms"
    clock: Callable[[], datetime] = _utcnow
    redacts_bodies: bool = False  # blank Twilio's copy once delivered (scheduler.retention)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> TwilioSender:
        """Build a sender from the Twilio settings."""
        assert settings.twilio_account_sid and settings.twilio_auth_token
        http = HttpxTwilioClient(api_base_url=settings.twilio_api_base_url, transport=transport)
        client = Client(settings.twilio_account_sid,
                        settings.twilio_auth_token.get_secret_value(), http_client=http)
        return cls(client=client, status_callback=settings.public_base_url + STATUS_PATH,
                   from_number=settings.twilio_from_number,
                   messaging_service_sid=settings.twilio_messaging_service_sid,
                   redacts_bodies=settings.twilio_redacts)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; turn Twilio errors into ours."""
        body = render_sms(message.body, message.choices)
        sensitive(message.address, body)  # kept out of every log line from here on
        sender: dict[str, Any] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid else {"from_": self.from_number}
        )
        try:
            sent = await self.client.messages.create_async(
                to=message.address, body=body, status_callback=self.status_callback, **sender)
        except (_RetryLater, _Unreadable, httpx.TransportError) as exc:
            raise _transient(exc, sending=True) from None
        except TwilioRestException as exc:
            raise _translate(exc) from None
        if not sent.sid:
            raise TransientSendError("twilio: answer without a sid", maybe_sent=True)
        segments = _segments(sent.num_segments, body)
        logger.info("sms outbox #%s to %s accepted as %s", message.id,
                    redact(message.address), sent.sid)
        return SendResult(provider_id=sent.sid, segments=segments)

    def cost(self, message: OutgoingMessage) -> float:
        """Return the segments of the text as it will be sent."""
        return float(sms_segments(render_sms(message.body, message.choices)))

    async def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Return Twilio's record of this message if it took it since the claim, else None."""
        body = render_sms(message.body, message.choices)
        since = _search_from(message.claimed_at, self.clock())
        try:
            recent = await self.client.messages.list_async(
                to=message.address, limit=LOOKUP_LIMIT, page_size=LOOKUP_PAGE_SIZE)
        except (_RetryLater, _Unreadable, httpx.TransportError) as exc:
            raise _transient(exc, sending=False) from None
        except TwilioException as exc:  # a list page that is not 200 (bad credentials too)
            raise TransientSendError(f"twilio lookup failed: {type(exc).__name__}") from None
        matches = [m for m in recent if m.sid and m.body == body
                   and m.date_created is not None and m.date_created >= since]
        if not matches:
            logger.info("sms outbox #%s: twilio has no copy for %s", message.id,
                        redact(message.address))
            return None
        found = matches[0]  # the newest: earlier ones are likelier to be earlier rows'
        logger.info("sms outbox #%s to %s found at twilio as %s (%d matching)", message.id,
                    redact(message.address), found.sid, len(matches))
        segments = _segments(found.num_segments, body)
        return SendResult(provider_id=found.sid, segments=segments)

    async def redact(self, provider_id: str) -> bool:
        """Blank Twilio's copy of a message's body; say False when Twilio has no such
        message (already deleted)."""
        try:
            await self.client.messages(provider_id).update_async(body="")
        except (_RetryLater, _Unreadable, httpx.TransportError) as exc:
            raise _transient(exc, sending=False) from None
        except TwilioRestException as exc:
            if exc.status == 404:
                return False
            raise _translate(exc) from None
        logger.info("sms %s redacted at twilio", provider_id)
        return True

    async def aclose(self) -> None:
        """Close the HTTP client."""
        http = self.client.http_client
        if isinstance(http, HttpxTwilioClient):
            await http.aclose()


def _segments(reported: str | None, body: str) -> int:
    """Return Twilio's segment count, or ours while it has none (a service answers "0")."""
    count = int(reported) if reported and reported.isdigit() else 0
    return count or sms_segments(body)


def _search_from(claimed_at: datetime | None, now: datetime) -> datetime:
    """Return the oldest creation time a lookup accepts as this claim's message."""
    if claimed_at is None:
        return now - LOOKUP_WINDOW
    if claimed_at.tzinfo is None:  # SQLite hands back naive UTC
        claimed_at = claimed_at.replace(tzinfo=UTC)
    # Twilio dates to the whole second, so a message sent just after the claim may read earlier.
    return claimed_at.replace(microsecond=0) - LOOKUP_SKEW


def error_reason(code: int | None, *, http_status: int | None = None) -> str:
    """Return the short fixed text stored for a Twilio error (never Twilio's own words)."""
    if code is None:
        return f"twilio http {http_status}" if http_status else "twilio: error"
    return f"twilio {code}: {ERROR_REASONS.get(code, 'rejected')}"


def _translate(exc: TwilioRestException) -> PermanentSendError | TransientSendError:
    code = int(exc.code) if exc.code else None
    reason = error_reason(code, http_status=exc.status)
    if exc.status in (401, 403) and code not in OPTED_OUT_CODES:
        # Our credentials are wrong: keep the message until an operator fixes them.
        return TransientSendError(reason, code=str(code or exc.status))
    return PermanentSendError(reason, code=str(code or exc.status),
                              identity_status=identity_status_for(code))


def twilio_error_code(value: str | None) -> int | None:
    """Read a Twilio ErrorCode form value (up to six ASCII digits; anything else is none)."""
    return int(value) if value and TWILIO_CODE.fullmatch(value) else None


def twilio_sid(value: str | None) -> str | None:
    """Return a MessageSid as Twilio writes them (letters and digits, not over-long)."""
    return value if value and TWILIO_SID.fullmatch(value) else None


def clean_text(value: str, *, limit: int = MAX_FIELD) -> str:
    """Drop NULs and other control characters (not newlines or tabs), and cut to `limit`."""
    return CONTROL.sub("", value)[:limit]


def signature_valid(
    *, auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Check X-Twilio-Signature with the twilio library's own validator."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))
