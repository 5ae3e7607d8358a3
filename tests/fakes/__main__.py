"""Serve both fakes on loopback, so `throughcare run` can be tried with no accounts.

    python -m tests.fakes --port 8081 --app http://127.0.0.1:8000

Then act as a person with curl (see docs/channels.md):
    POST /_fake/sms        from=+447700900123 body=...      an SMS reaches our webhook
    POST /_fake/telegram   chat_id=424242 text=... | press=...  a Telegram update
    GET  /_fake/inbox      everything each phone and chat has received
"""

from __future__ import annotations

import argparse
import os

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.telegram_api import FakeTelegram, FakeTelegramUser
from tests.fakes.twilio_api import FakeTwilio

DEFAULTS = {
    "TELEGRAM_BOT_TOKEN": "7000000001:fake-token-for-local-use",
    "TELEGRAM_WEBHOOK_SECRET": "local-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "1" * 32,
    "TWILIO_FROM_NUMBER": "+447700900001",
}


def setting(name: str) -> str:
    """Read a setting the same way throughcare does, with a local default."""
    return os.environ.get(name) or DEFAULTS[name]


def build(app_url: str) -> Starlette:
    """Return one ASGI app serving both fakes and the person-side controls."""
    telegram = FakeTelegram(setting("TELEGRAM_BOT_TOKEN"))
    twilio = FakeTwilio(setting("TWILIO_ACCOUNT_SID"), setting("TWILIO_AUTH_TOKEN"),
                        webhook_url=f"{app_url}/sms/inbound",
                        our_number=setting("TWILIO_FROM_NUMBER"), client=httpx.AsyncClient(),
                        auto_deliver=1.0)
    users: dict[int, FakeTelegramUser] = {}

    async def form(request: Request) -> dict[str, str]:
        if "json" in request.headers.get("content-type", ""):
            return {k: str(v) for k, v in (await request.json()).items()}
        return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}

    async def sms(request: Request) -> JSONResponse:
        data = await form(request)
        response = await twilio.text_from(data.get("from", "+447700900123"), data["body"])
        return JSONResponse({"webhook_status": response.status_code,
                             "see_replies_at": "/_fake/inbox"})

    async def tg(request: Request) -> JSONResponse:
        data = await form(request)
        chat_id = int(data.get("chat_id", "424242"))
        user = users.setdefault(chat_id, FakeTelegramUser(telegram, chat_id,
                                                          data.get("name", "Sam")))
        update = user.press(data["press"]) if data.get("press") else user.text(data["text"])
        if telegram.webhook:
            secret = telegram.webhook.get("secret_token") or ""
            response = await twilio.client.post(  # type: ignore[union-attr]
                telegram.webhook["url"], json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret})
            return JSONResponse({"webhook_status": response.status_code})
        telegram.queue_update(update)
        return JSONResponse({"queued_for_getUpdates": update["update_id"]})

    async def inbox(request: Request) -> JSONResponse:
        chats = {p["chat_id"] for p in telegram.delivered}
        numbers = {m["to"] for m in twilio.messages} | {m["to"] for m in twilio.network_replies}
        return JSONResponse({"sms": {n: twilio.seen(n) for n in sorted(numbers)},
                             "telegram": {str(c): telegram.seen(c) for c in sorted(chats)}})

    return Starlette(routes=[
        Route("/_fake/sms", sms, methods=["POST"]),
        Route("/_fake/telegram", tg, methods=["POST"]),
        Route("/_fake/inbox", inbox),
        *twilio.routes,
        *telegram.routes,
    ])


def main() -> None:
    """Serve the fakes until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--app", default="http://127.0.0.1:8000",
                        help="where throughcare listens (for SMS webhooks)")
    args = parser.parse_args()
    uvicorn.run(build(args.app.rstrip("/")), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
