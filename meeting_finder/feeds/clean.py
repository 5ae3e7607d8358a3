"""Clean what a feed says: plain text from HTML, and dial-in numbers that really dial."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import phonenumbers

_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_DIAL_TAIL = re.compile(r"[,;#*]")  # pauses and ids follow the number in one-tap dial strings
_COUNTRY_REGIONS = {
    "us": "US", "usa": "US", "united states": "US", "united states of america": "US",
    "uk": "GB", "gb": "GB", "united kingdom": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "canada": "CA",
    "ireland": "IE", "australia": "AU", "new zealand": "NZ", "south africa": "ZA",
    "germany": "DE", "netherlands": "NL", "mexico": "MX",
}


class _TextOnly(HTMLParser):
    """Collect the text of an HTML fragment; block tags become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS and tag != "br":
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def plain_text(value: Any, *, multiline: bool = False) -> str | None:
    """Return a feed value as plain text: tags stripped, entities decoded, spaces tidied."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value)
    if "<" in text or "&" in text:
        parser = _TextOnly()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    text = text.replace("\xa0", " ")
    if multiline:
        lines = [" ".join(line.split()) for line in text.splitlines()]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    else:
        text = " ".join(text.split())
    return text.strip() or None


def country_region(country: str | None) -> str | None:
    """Return the phone region ("US", "GB") for a feed's country name or code, if known."""
    word = (country or "").strip().lower()
    if word in _COUNTRY_REGIONS:
        return _COUNTRY_REGIONS[word]
    if len(word) == 2 and word.isalpha():
        code = word.upper()
        return code if phonenumbers.country_code_for_region(code) else None
    return None


def _valid_number(number: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    tries: list[tuple[str, str | None]] = [(number, region)]
    if not number.strip().startswith("+"):
        # Feeds often drop the "+" of an international number: "17163201034".
        tries.append(("+" + re.sub(r"\D", "", number), None))
    for text, default_region in tries:
        try:
            parsed = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return parsed
    return None


def dial_string(value: Any, *, region: str | None) -> str | None:
    """Return a dial-in as a valid E.164 number plus its pauses and ids, or None if invalid."""
    text = plain_text(value)
    if text is None:
        return None
    cut = _DIAL_TAIL.search(text)
    number, tail = (text[: cut.start()], text[cut.start() :]) if cut else (text, "")
    parsed = _valid_number(number, region) if number.strip() else None
    if parsed is None:
        return None
    tail = re.sub(r"[^\d,#*]", "", tail.replace(";", ","))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) + tail
