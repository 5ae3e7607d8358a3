"""A fake Telegram Bot API: records every call and answers with real-shaped JSON.

Serve it on loopback (`python -m tests.fakes`) or hand `httpx.ASGITransport(fake.app)` to
python-telegram-bot's `HTTPXRequest(httpx_kwargs={"transport": ...})`. `FakeTelegramUser`
builds the updates a person's taps and messages produce, shaped as Telegram sends them.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BOT_ID = 7000000001
BOT_USERNAME = "throughcare_test_bot"
_JSON_FIELDS = {"reply_markup", "allowed_updates", "commands", "scope", "link_preview_options",
                "entities", "reply_parameters"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout"}
_TAG = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|code|pre|a|tg-spoiler|blockquote)"
                  r"(\s[^>]*)?>")


def visible_text(html_text: str) -> str:
    """Return what Telegram shows for an HTML-formatted message (tags gone, entities read)."""
    return html.unescape(_TAG.sub("", html_text))


@dataclass
class Call:
    """One Bot API request as the fake saw it."""

    method: str
    params: dict[str, Any]


@dataclass
class FakeTelegram:
    """The Bot API for one bot token, with injectable failures."""

    token: str
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    commands: list[dict[str, str]] = field(default_factory=list)  # the default menu
    # Menus for people whose app is in a given language ("cy"), as setMyCommands keeps them.
    commands_for: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    blocked_chats: set[int] = field(default_factory=set)  # these users blocked the bot
    failures: list[dict[str, Any]] = field(default_factory=list)  # next sendMessage answers
    pending_updates: list[dict[str, Any]] = field(default_factory=list)  # for getUpdates
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # sendMessage that worked
    _message_ids: Any = field(default_factory=lambda: itertools.count(1001))
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def routes(self) -> list[Route]:
        """Return the route serving `/bot<token>/<method>`."""
        return [Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])]

    @property
    def app(self) -> Starlette:
        """Return the ASGI app serving the Bot API."""
        return Starlette(routes=self.routes)

    # What tests and the control endpoints read --------------------------------------------

    def called(self, method: str) -> list[dict[str, Any]]:
        """Return the parameters of every call of one method."""
        return [c.params for c in self.calls if c.method == method]

    def seen(self, chat_id: int) -> list[str]:
        """Return each message a person in this chat would read, buttons shown in brackets."""
        out = []
        for params in self.delivered:
            if params.get("chat_id") != chat_id:
                continue
            text = visible_text(params["text"])
            markup = params.get("reply_markup") or {}
            buttons = [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
            buttons += [b["text"] for row in markup.get("keyboard", []) for b in row]
            out.append(text + "".join(f"\n[{b}]" for b in buttons))
        return out

    def fail_next(self, error_code: int, description: str, retry_after: int | None = None
                  ) -> None:
        """Make the next sendMessage fail the way Telegram fails."""
        failure: dict[str, Any] = {"ok": False, "error_code": error_code,
                                   "description": description}
        if retry_after is not None:
            failure["parameters"] = {"retry_after": retry_after}
        self.failures.append(failure)

    def queue_update(self, update: dict[str, Any]) -> None:
        """Hold an update for the next getUpdates (polling mode)."""
        self.pending_updates.append(update)
        self._new_update.set()

    # The API -------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401,
                                 "description": "Unauthorized"}, status_code=401)
        method = request.path_params["method"]
        params = await _params(request)
        self.calls.append(Call(method, params))
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"},
                                status_code=404)
        body = await handler(params)
        status = body.get("error_code", 200) if not body["ok"] else 200
        return JSONResponse(body, status_code=status)

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "throughcare",
                "username": BOT_USERNAME}

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": {**self._bot_user(), "can_join_groups": False,
                                       "can_read_all_group_messages": False,
                                       "supports_inline_queries": False,
                                       "can_connect_to_business": False,
                                       "has_main_web_app": False}}

    async def _api_setWebhook(self, params: dict[str, Any]) -> dict[str, Any]:
        self.webhook = params
        return {"ok": True, "result": True, "description": "Webhook was set"}

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> dict[str, Any]:
        was = bool(self.webhook)
        self.webhook = {}
        return {"ok": True, "result": True,
                "description": "Webhook was deleted" if was else "Webhook is already deleted"}

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": {"url": self.webhook.get("url", ""),
                                       "has_custom_certificate": False,
                                       "pending_update_count": len(self.pending_updates)}}

    async def _api_setMyCommands(self, params: dict[str, Any]) -> dict[str, Any]:
        language = str(params.get("language_code") or "")
        if language:
            self.commands_for[language] = params.get("commands", [])
        else:
            self.commands = params.get("commands", [])
        return {"ok": True, "result": True}

    async def _api_getUpdates(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.webhook:
            return {"ok": False, "error_code": 409, "description": "Conflict: can't use "
                    "getUpdates method while webhook is active; use deleteWebhook to delete "
                    "the webhook first"}
        offset = int(params.get("offset") or 0)
        self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
        if not self.pending_updates and params.get("timeout"):
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(),
                                       timeout=min(float(params["timeout"]), 5.0))
            except TimeoutError:
                pass
        return {"ok": True, "result": self.pending_updates[:100]}

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked_chats:
            return {"ok": False, "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user"}
        if self.failures:
            return self.failures.pop(0)
        text = params.get("text", "")
        if not text.strip():
            return {"ok": False, "error_code": 400, "description": "Bad Request: message text "
                    "is empty"}
        if len(visible_text(text)) > 4096:
            return {"ok": False, "error_code": 400,
                    "description": "Bad Request: message is too long"}
        message = {
            "message_id": next(self._message_ids), "from": self._bot_user(),
            "chat": {"id": chat_id, "first_name": "Sam", "type": "private"},
            "date": int(time.time()), "text": visible_text(text),
        }
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.messages[(chat_id, message["message_id"])] = message
        self.delivered.append(params)
        return {"ok": True, "result": message}

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "result": True}

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        message = self.messages.get(key)
        if message is None:
            return {"ok": False, "error_code": 400,
                    "description": "Bad Request: message to edit not found"}
        message = {**message, "text": visible_text(params["text"]),
                   "edit_date": int(time.time())}
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[key] = message
        return {"ok": True, "result": message}


async def _params(request: Request) -> dict[str, Any]:
    """Read Bot API parameters the way Telegram does: query, form, or JSON body."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if "application/json" in ctype:
        params.update(json.loads(await request.body() or b"{}"))
    elif request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    for key in _INT_FIELDS & params.keys():
        if isinstance(params[key], str) and params[key].lstrip("-").isdigit():
            params[key] = int(params[key])
    return params


_update_ids = itertools.count(500_000_001)


@dataclass
class FakeTelegramUser:
    """A person in a private chat with the bot; builds the updates their actions produce."""

    fake: FakeTelegram
    chat_id: int = 123456789
    first_name: str = "Sam"

    def _user(self) -> dict[str, Any]:
        return {"id": self.chat_id, "is_bot": False, "first_name": self.first_name,
                "language_code": "en"}

    def _chat(self) -> dict[str, Any]:
        return {"id": self.chat_id, "first_name": self.first_name, "type": "private"}

    def _message(self, **fields: Any) -> dict[str, Any]:
        return {"update_id": next(_update_ids), "message": {
            "message_id": next(self.fake._message_ids), "from": self._user(),
            "chat": self._chat(), "date": int(time.time()), **fields}}

    def text(self, text: str) -> dict[str, Any]:
        """Return the update for typing `text` (commands carry a bot_command entity)."""
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            fields["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
        return self._message(**fields)

    def location(self, lat: float, lon: float) -> dict[str, Any]:
        """Return the update for sharing a location with the location button."""
        return self._message(location={"latitude": lat, "longitude": lon})

    def press(self, label: str) -> dict[str, Any]:
        """Return the update for pressing the newest inline button with this label."""
        for (chat_id, _mid), message in sorted(self.fake.messages.items(), reverse=True):
            if chat_id != self.chat_id:
                continue
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        return {"update_id": next(_update_ids), "callback_query": {
                            "id": str(4_000_000_000 + len(self.fake.calls)),
                            "from": self._user(), "message": message,
                            "chat_instance": "-7000000000000000001",
                            "data": button["callback_data"]}}
        raise LookupError(f"no button {label!r} in chat {self.chat_id}")

    def blocks_bot(self) -> dict[str, Any]:
        """Return the my_chat_member update Telegram sends when the person blocks the bot."""
        bot = {**self.fake._bot_user()}
        now = int(time.time())
        return {"update_id": next(_update_ids), "my_chat_member": {
            "chat": self._chat(), "from": self._user(), "date": now,
            "old_chat_member": {"user": bot, "status": "member"},
            "new_chat_member": {"user": bot, "status": "kicked", "until_date": 0}}}
