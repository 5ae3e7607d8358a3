"""Logging for every process: one redacting handler on the root, JSON lines off a terminal.

Whatever a call site logs, the handler writes the final text only after `Redactor` has
removed phone numbers, link codes, bot tokens, Twilio account SIDs and auth tokens, the
configured secrets, and the message bodies and numbers this request or send is handling
(`sensitive()` names them). Library loggers that would write URLs with the bot token, SQL
rows or provider payloads are kept at WARNING.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from storage.participants import CODE_ALPHABET

# Loggers whose INFO or DEBUG lines carry tokens in URLs, SQL with rows, or request payloads.
QUIET_LOGGERS = (
    "httpx", "httpcore", "telegram", "twilio", "aiosqlite", "asyncpg", "sqlalchemy.engine",
    "sqlalchemy.pool", "apscheduler.executors.default", "alembic", "multipart", "hpack",
)
_CODE = f"[{CODE_ALPHABET}]"
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram bot tokens, bare or in a Bot API URL (/bot<token>/method).
    (re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"), "[token]"),
    # Twilio account and service SIDs, and 32-hex auth tokens (message SIDs are kept:
    # they name no one and are how an operator finds a message in Twilio's console).
    (re.compile(r"\b(?:AC|MG|PN|SK)[0-9a-fA-F]{32}\b"), "[sid]"),
    (re.compile(r"(?<![0-9a-zA-Z])[0-9a-fA-F]{32}(?![0-9a-zA-Z])"), "[secret]"),
    # Link codes as printed (ABCDE-FGHJK) in any case, or run together in capitals.
    (re.compile(rf"(?<![A-Za-z0-9]){_CODE}{{5}}[- ]{_CODE}{{5}}(?![A-Za-z0-9])",
                re.IGNORECASE), "[code]"),
    (re.compile(rf"(?<![A-Za-z0-9]){_CODE}{{10}}(?![A-Za-z0-9])"), "[code]"),
    # Phone numbers: E.164 (+447700900123), 447700900123, and UK 07700 900123 forms.
    (re.compile(r"\+\d[\d ()-]{6,18}\d"), "[phone]"),
    (re.compile(r"(?<!\d)(?:44|0)7\d{3}[ -]?\d{3}[ -]?\d{3}(?!\d)"), "[phone]"),
)
MIN_SENSITIVE = 3  # shorter values ("1", "Y") would blot out every log line
MAX_SENSITIVE = 64  # per scope: enough for a request, bounded for a long-lived task

_scope: contextvars.ContextVar[deque[str] | None] = contextvars.ContextVar(
    "throughcare_log_scope", default=None)
_secrets: list[str] = []


def new_scope() -> contextvars.Token[deque[str] | None]:
    """Start a fresh set of sensitive values for this request or task."""
    return _scope.set(deque(maxlen=MAX_SENSITIVE))


def end_scope(token: contextvars.Token[deque[str] | None]) -> None:
    """Forget the values of the scope that `token` started."""
    _scope.reset(token)


def sensitive(*values: str | None) -> None:
    """Say these values (a message body, a number) must never reach a log line."""
    scope = _scope.get()
    if scope is None:
        scope = deque(maxlen=MAX_SENSITIVE)
        _scope.set(scope)
    for value in values:
        for part in _parts(value):
            if part not in scope:
                scope.append(part)


def _parts(value: str | None) -> list[str]:
    """Return the value and its lines (a log may quote one line of a long body)."""
    if not value or len(value.strip()) < MIN_SENSITIVE:
        return []
    parts = [value] + [line.strip() for line in value.splitlines()]
    return [p for p in dict.fromkeys(parts) if len(p) >= MIN_SENSITIVE]


def add_secrets(values: Iterable[str | None]) -> None:
    """Redact these configured secrets (tokens, keys) everywhere, for the process's life."""
    for value in values:
        if value and len(value) >= 8 and value not in _secrets:
            _secrets.append(value)


def redact(text: str) -> str:
    """Return text with secrets, sensitive values and personal patterns replaced."""
    for secret in _secrets:
        text = text.replace(secret, "[secret]")
    scope = _scope.get()
    if scope:
        for value in sorted(scope, key=len, reverse=True):
            text = text.replace(value, "[redacted]")
            if value != repr(value)[1:-1]:  # as a repr shows it (tuples of parameters)
                text = text.replace(repr(value)[1:-1], "[redacted]")
    for pattern, mark in PATTERNS:
        text = pattern.sub(mark, text)
    return text


class Redactor(logging.Filter):
    """Replace a record's final text and traceback with their redacted forms."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drop a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format: keep what we can see
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None  # the text above is what a formatter writes
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def make_handler(stream: IO[str] | None = None, *, as_json: bool | None = None
                 ) -> logging.Handler:
    """Return a redacting handler: JSON lines unless the stream is a terminal."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if as_json is None:
        as_json = not (hasattr(stream, "isatty") and stream.isatty())
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Redactor())
    return handler


def setup_logging(level: str = "INFO", *, stream: IO[str] | None = None,
                  as_json: bool | None = None, secrets: Iterable[str | None] = ()
                  ) -> logging.Handler:
    """Put one redacting handler on the root logger at `level`; quieten chatty libraries."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "throughcare", False)]:
        root.removeHandler(old)
    handler = make_handler(stream, as_json=as_json)
    handler.throughcare = True  # type: ignore[attr-defined]
    for other in root.handlers:  # handlers someone else put there get the same redaction
        if not any(isinstance(f, Redactor) for f in other.filters):
            other.addFilter(Redactor())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    add_secrets(secrets)
    return handler


class LogScope:
    """ASGI middleware: each request gets its own sensitive values (see `sensitive`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the request (and its background tasks) inside a fresh scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = new_scope()
        try:
            await self.app(scope, receive, send)
        finally:
            end_scope(token)
