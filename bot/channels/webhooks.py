"""Provider webhooks: Twilio inbound SMS and WhatsApp, status callbacks, Telegram updates."""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.inbox import ChannelRuntime, receive, send_replies
from bot.channels.sms import (
    EMPTY_TWIML,
    clean_text,
    identity_status_for,
    redact,
    signature_valid,
    twilio_error_code,
    twilio_sid,
)
from bot.channels.telegram import (
    SECRET_HEADER,
    WEBHOOK_PATH,
    NotAnUpdate,
    finish_update,
    read_update,
    record_update,
)
from bot.channels.whatsapp import channel_of, inbound_address
from bot.logs import sensitive
from handlers.textin import START_WORDS, bare_word
from handlers.types import Inbound
from storage.channels_q import advance_outbox, outbox_by_provider_id, set_identity_status
from storage.db import session_scope
from storage.models import IdentityStatus, OutboundMessage, OutboxStatus
from storage.notify import hold_wakes

logger = logging.getLogger(__name__)
router = APIRouter()

# Twilio MessageStatus values that move our outbox row; the others (accepted, queued,
# sending, scheduled) say nothing we do not know once the API accepted the message.
TWILIO_STATUS = {
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "read": OutboxStatus.DELIVERED,
    "undelivered": OutboxStatus.FAILED,
    "failed": OutboxStatus.FAILED,
}
RESUME_WORDS = START_WORDS | {"YES"}  # what lifts a carrier-level opt-out on Twilio


def _runtime(request: Request) -> ChannelRuntime:
    return request.app.state.channels


async def _signed_form(request: Request, runtime: ChannelRuntime) -> dict[str, str]:
    """Return the form of a request Twilio signed, or refuse it with 403."""
    token = runtime.settings.twilio_auth_token
    url = runtime.settings.public_base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    try:
        form = await request.form(max_files=0, max_fields=100)
    except (HTTPException, ValueError, KeyError, AssertionError) as exc:
        # Starlette's multipart parser answers odd bodies with these; Twilio never sends them.
        logger.warning("refused %s: unreadable form (%s)", request.url.path, type(exc).__name__)
        raise HTTPException(status_code=400, detail="unreadable form") from None
    params = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    if token is None or not signature_valid(
        auth_token=token.get_secret_value(), url=url, params=params,
        signature=request.headers.get("X-Twilio-Signature"),
    ):
        logger.warning("refused %s: missing or wrong Twilio signature", request.url.path)
        raise HTTPException(status_code=403, detail="forbidden")
    # Checked as signed; then made safe to store (no NULs, nothing over-long).
    clean = {clean_text(k, limit=100): clean_text(v) for k, v in params.items()}
    sensitive(clean.get("From"), clean.get("To"), clean.get("Body"))
    return clean


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/sms/inbound")
async def sms_inbound(request: Request, background: BackgroundTasks) -> Response:
    """Take one SMS or WhatsApp message from Twilio: answer with empty TwiML, reply after."""
    runtime = _runtime(request)
    params = await _signed_form(request, runtime)
    sid = twilio_sid(params.get("MessageSid") or params.get("SmsSid"))
    # "whatsapp:+447..." is the WhatsApp channel, its address the number without the prefix.
    channel, sender = inbound_address(params.get("From", "")[:80])
    if not sid or not sender:
        logger.warning("sms webhook without MessageSid or a usable From (%s)",
                       redact(params.get("From")))
        return _twiml()
    now = runtime.clock()
    body = params.get("Body", "")
    if bare_word(body) in RESUME_WORDS:
        # Twilio lifts its own block when the person sends START; so do we.
        async with session_scope(runtime.engine) as session:
            await set_identity_status(session, channel=channel, address=sender,
                                      status=IdentityStatus.ACTIVE, now=now,
                                      only_from=IdentityStatus.OPTED_OUT)
    inbound = Inbound(channel=channel, address=sender, text=body, received_at=now,
                      provider_id=sid)
    with hold_wakes() as held:
        result = await receive(runtime, inbound)
    if result.duplicate:
        logger.info("%s %s seen before; not handled again", channel, sid)
    background.add_task(send_replies, runtime, result.outbox_keys, held)
    return _twiml()


@router.post("/sms/status")
async def sms_status(request: Request) -> Response:
    """Move an outbox row forward from a Twilio status callback."""
    runtime = _runtime(request)
    params = await _signed_form(request, runtime)
    sid = twilio_sid(params.get("MessageSid") or params.get("SmsSid")) or ""
    status = TWILIO_STATUS.get(params.get("MessageStatus", "").lower())
    code = twilio_error_code(params.get("ErrorCode"))
    if status is None or not sid:
        return Response(status_code=200)
    now = runtime.clock()
    channel = channel_of(params.get("To"))
    async with session_scope(runtime.engine) as session:
        row = await _sent_row(session, channel, sid)
        if row is None:
            logger.info("status for unknown %s %s ignored", channel, sid)
            return Response(status_code=200)
        # Only our fixed words: the status is one of TWILIO_STATUS, the code a number.
        error = f"twilio {code}: {params['MessageStatus'].lower()}" if code else None
        moved = await advance_outbox(session, row=row, status=status, now=now, error=error)
        consequence = identity_status_for(code)
        if moved and status == OutboxStatus.FAILED and consequence is not None:
            # The identity of the channel it went by (a WhatsApp row sent by SMS: the SMS one).
            await set_identity_status(session, channel=channel, address=row.address,
                                      status=consequence, now=now, error_code=str(code))
    return Response(status_code=200)


async def _sent_row(session: AsyncSession, channel: str, sid: str) -> OutboundMessage | None:
    """Return the row Twilio sent as `sid`: by its channel, or a WhatsApp row sent by SMS."""
    row = await outbox_by_provider_id(session, channel=channel, provider_id=sid)
    if row is None and channel == "sms":
        row = await outbox_by_provider_id(session, channel="whatsapp", provider_id=sid)
    return row


@router.post(WEBHOOK_PATH)
async def telegram_webhook(request: Request, background: BackgroundTasks) -> Response:
    """Take one Telegram update: check the secret, record it, answer, then send replies."""
    runtime = _runtime(request)
    tg_app = request.app.state.telegram_app
    secret = runtime.settings.telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER, "")
    if secret is None or not hmac.compare_digest(
        given.encode(), secret.get_secret_value().encode()
    ):
        logger.warning("refused telegram webhook: missing or wrong secret token")
        raise HTTPException(status_code=403, detail="forbidden")
    if tg_app is None:  # still connecting to the Bot API: Telegram will send it again
        return Response("telegram not ready, retry", status_code=503, media_type="text/plain")
    try:
        data = json.loads(await request.body())
        update, inbound = read_update(data, tg_app.bot, now=runtime.clock())
    except (ValueError, RecursionError, NotAnUpdate) as exc:
        # ValueError covers bad JSON, bad UTF-8 and numbers too long to read; RecursionError
        # nesting deeper than the parser goes.
        logger.warning("refused telegram webhook: not a readable update (%s)",
                       type(exc).__name__)
        raise HTTPException(status_code=400, detail="not a Telegram update") from None
    if inbound is not None:
        sensitive(inbound.text, inbound.display_name, inbound.address)
    try:
        # Written down before we answer: once we say 200, Telegram never sends it again.
        with hold_wakes() as held:
            result = await record_update(runtime, update, inbound)
    except SQLAlchemyError as exc:
        logger.error("telegram update %s not recorded (%s); Telegram will retry",
                     update.update_id, type(exc).__name__)
        return Response("not recorded, retry", status_code=500, media_type="text/plain")
    if result is not None and result.duplicate:
        logger.info("telegram update %s seen before; not handled again", update.update_id)
    background.add_task(finish_update, runtime, update, result, held)
    return Response(status_code=200)
