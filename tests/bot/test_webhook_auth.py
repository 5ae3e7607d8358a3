"""Webhooks are authenticated before anything is written, and replays are handled once."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from handlers.texts import t
from tests.bot.conftest import (
    AUTH_TOKEN,
    PHONE,
    PUBLIC,
    WEBHOOK_SECRET,
    Enrolled,
    Stack,
    db_counts,
)

SMS = {"MessageSid": "SM" + "a" * 32, "AccountSid": "AC" + "0" * 32, "From": PHONE,
       "To": "+447700900001", "Body": "STOP", "NumMedia": "0"}


async def test_unsigned_sms_is_refused_and_leaves_no_trace(stack: Stack, enrolled: Enrolled
                                                          ) -> None:
    before = await db_counts(stack.engine)
    response = await stack.client.post("/sms/inbound", data={**SMS, "Body": enrolled.code})
    assert response.status_code == 403
    assert await db_counts(stack.engine) == before
    assert stack.twilio.messages == []


async def test_forged_sms_signatures_are_refused(stack: Stack, enrolled: Enrolled) -> None:
    before = await db_counts(stack.engine)
    url = f"{PUBLIC}/sms/inbound"
    wrong_key = RequestValidator("0" * 32).compute_signature(url, SMS)
    good = RequestValidator(AUTH_TOKEN).compute_signature(url, SMS)
    wrong_url = RequestValidator(AUTH_TOKEN).compute_signature("http://evil.test/sms/inbound",
                                                               SMS)
    for params, signature in ((SMS, wrong_key), (SMS, wrong_url), (SMS, ""),
                              ({**SMS, "Body": enrolled.code}, good)):  # body changed after
        response = await stack.client.post("/sms/inbound", data=params,
                                           headers={"X-Twilio-Signature": signature})
        assert response.status_code == 403
    assert await db_counts(stack.engine) == before


async def test_signature_checked_against_public_url_behind_a_proxy(stack: Stack) -> None:
    # The proxy forwards to an internal host; Twilio signed the public URL.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC}/sms/inbound", SMS)
    response = await stack.client.post("http://10.0.0.7:8000/sms/inbound", data=SMS,
                                       headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def test_forged_status_callback_is_refused(stack: Stack) -> None:
    before = await db_counts(stack.engine)
    response = await stack.client.post("/sms/status", data={
        "MessageSid": "SM" + "b" * 32, "MessageStatus": "failed", "ErrorCode": "21610"},
        headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert response.status_code == 403
    assert await db_counts(stack.engine) == before


async def test_wrong_or_missing_telegram_secret_is_refused(stack: Stack, enrolled: Enrolled
                                                          ) -> None:
    before = await db_counts(stack.engine)
    for secret in ("wrong", "", WEBHOOK_SECRET + "x"):
        response = await stack.telegram_update(stack.user.text(f"/start {enrolled.code}"),
                                               secret=secret)
        assert response.status_code == 403
    response = await stack.client.post("/telegram/webhook",
                                       json=stack.user.text(f"/start {enrolled.code}"))
    assert response.status_code == 403
    assert await db_counts(stack.engine) == before
    assert stack.telegram.called("sendMessage") == []


async def test_telegram_rejects_what_is_not_an_update(stack: Stack) -> None:
    for body in (b"not json", b"[]", b'{"message": {}}'):
        response = await stack.client.post(
            "/telegram/webhook", content=body,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
                     "Content-Type": "application/json"})
        assert response.status_code == 400


async def test_replayed_message_sid_is_handled_once(stack: Stack, enrolled: Enrolled) -> None:
    sid = "SM" + "c" * 32
    first = await stack.twilio.text_from(PHONE, enrolled.code, sid=sid)
    again = await stack.twilio.text_from(PHONE, enrolled.code, sid=sid)
    assert first.status_code == again.status_code == 200
    # Linked once, answered once: the retry did not say "that code has been used".
    assert stack.twilio.seen(PHONE)[0] == t("welcome.linked", name="Sam")
    assert len(stack.twilio.seen(PHONE)) == 2
    counts = await db_counts(stack.engine)
    assert counts["InboundMessage"] == 1 and counts["ChannelIdentity"] == 1


async def test_replayed_update_id_is_handled_once(stack: Stack, enrolled: Enrolled) -> None:
    update = stack.user.text(f"/start {enrolled.code}")
    await stack.telegram_update(update)
    await stack.telegram_update(update)
    assert len(stack.telegram.seen(stack.user.chat_id)) == 2  # linked + consent, once
    press = stack.user.press(t("consent.yes_label"))
    await stack.telegram_update(press)
    await stack.telegram_update(press)
    assert len(stack.telegram.called("answerCallbackQuery")) == 1
    assert len(stack.telegram.called("editMessageText")) == 1
    assert len(stack.telegram.seen(stack.user.chat_id)) == 4
    assert (await db_counts(stack.engine))["InboundMessage"] == 2
