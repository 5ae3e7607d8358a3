"""Render a reply for a channel: plain GSM-7 SMS with numbered choices, or Telegram HTML."""

from __future__ import annotations

import html
from typing import Any

from handlers.texts import t

# GSM 03.38 basic set and the extension table (extension characters cost two septets).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = "^{}\\[~]|€\f"
_GSM7 = set(GSM7_BASIC)
_EXT = set(GSM7_EXT)
# Characters that force UCS-2 for no good reason, swapped for plain ones.
_PLAIN = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"',
    "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2026": "...",
    "\u00a0": " ", "\u2022": "-", "\u2010": "-", "\u2011": "-", "\u00b4": "'", "\t": " ",
})


def to_gsm7(text: str) -> str:
    """Swap typographic characters for plain ones so the text stays GSM-7 where it can."""
    return text.translate(_PLAIN)


def is_gsm7(text: str) -> bool:
    """Say whether every character is in the GSM-7 basic or extension set."""
    return all(ch in _GSM7 or ch in _EXT for ch in text)


def sms_segments(text: str) -> int:
    """Count the SMS segments a text will take (GSM-7: 160/153, UCS-2: 70/67)."""
    if is_gsm7(text):
        # An extension character is an escape and its character: two septets, never split.
        sizes = [2 if ch in _EXT else 1 for ch in text]
        single, multi = 160, 153
    else:
        # A character outside the BMP (most emoji) is a surrogate pair: never split either.
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi = 70, 67
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def render_sms(body: str, choices: tuple[tuple[str, str], ...] | list[Any] = ()) -> str:
    """Render a reply as plain SMS text, choices numbered."""
    text = body
    if choices:
        options = [f"{n} {label}" for n, (label, _payload) in enumerate(choices, start=1)]
        listed = any(str(p).upper() in body.upper() for _l, p in choices)
        if not listed or len(choices) > 1:
            text = body + "\n" + "\n".join(options)
    return to_gsm7(text)


def render_telegram(
    body: str,
    choices: tuple[tuple[str, str], ...] | list[Any] = (),
    request_location: bool = False,
) -> tuple[str, dict[str, Any] | None]:
    """Render a reply as Telegram HTML with an inline keyboard or a location button."""
    text = html.escape(body, quote=False)
    markup: dict[str, Any] | None = None
    if choices:
        rows = [[{"text": label[:64], "callback_data": str(payload)[:64]}]
                for label, payload in choices]
        markup = {"inline_keyboard": rows}
    elif request_location:
        markup = {
            "keyboard": [[{"text": t("meetings.share_location"), "request_location": True}]],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
    return text, markup


def render_console(channel: str, body: str, choices: Any = (), request_location: bool = False
                   ) -> str:
    """Render what a person would see, as plain text for the terminal."""
    if channel == "telegram":
        text, markup = render_telegram(body, choices, request_location)
        text = html.unescape(text)
        if markup and "inline_keyboard" in markup:
            text += "\n" + " ".join(f"[{row[0]['text']}]" for row in markup["inline_keyboard"])
        elif markup:
            text += f"\n[{t('meetings.share_location')}]"
        return text
    return render_sms(body, choices)
