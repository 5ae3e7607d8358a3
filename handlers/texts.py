"""All participant-facing texts: data in `texts/*.toml`, looked up by dotted key."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TEXT_DIR = Path(__file__).with_name("texts")


class TextError(KeyError):
    """A text key is missing, duplicated, or a gap was left unfilled."""


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str], origin: str) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out, origin)
        elif isinstance(value, str):
            if full in out:
                raise TextError(f"text {full!r} defined twice (again in {origin})")
            out[full] = value
        else:
            raise TextError(f"text {full!r} in {origin} is not a string")


LANGUAGES = ("en", "cy")  # English; Welsh (Cymraeg). A new language is a folder of files.
DEFAULT_LANGUAGE = "en"
DISCREET_PREFIX = "discreet."  # a discreet variant of a text we start: "discreet.<key>"


@dataclass(frozen=True)
class Reader:
    """Whom a text is written for: their language, and whether it must be discreet."""

    language: str = DEFAULT_LANGUAGE
    discreet: bool = False


_READER: ContextVar[Reader] = ContextVar("throughcare_reader", default=Reader())  # noqa: B039 (frozen)


def _folder(language: str) -> Path:
    return TEXT_DIR if language == DEFAULT_LANGUAGE else TEXT_DIR / language


@cache
def all_texts(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """Load every text file of one language into one flat mapping of dotted keys."""
    if language not in LANGUAGES:
        raise TextError(f"no language {language!r}")
    out: dict[str, str] = {}
    for path in sorted(_folder(language).glob("*.toml")):
        with path.open("rb") as fh:
            _flatten("", tomllib.load(fh), out, f"{language}/{path.name}")
    return out


def current_reader() -> Reader:
    """Return whom texts are being written for just now."""
    return _READER.get()


@contextmanager
def reading_as(language: str | None = None, *, discreet: bool = False) -> Iterator[Reader]:
    """Write every t() inside for this reader: `with reading_as(p.language): ...`."""
    reader = Reader(language if language in LANGUAGES else DEFAULT_LANGUAGE, discreet)
    token = _READER.set(reader)
    try:
        yield reader
    finally:
        _READER.reset(token)


def placeholders(template: str) -> set[str]:
    """Return the names of the gaps in a template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def template_for(key: str, reader: Reader | None = None) -> str:
    """Return the template a reader gets for `key`: their language's discreet variant, then
    their language's text, then English (a missing translation fails a test, never a person).
    """
    reader = reader or current_reader()
    tried = [reader.language, DEFAULT_LANGUAGE] if reader.language != DEFAULT_LANGUAGE \
        else [DEFAULT_LANGUAGE]
    keys = [DISCREET_PREFIX + key, key] if reader.discreet else [key]
    for language in tried:
        texts = all_texts(language)
        for candidate in keys:
            if candidate in texts:
                return texts[candidate]
    raise TextError(f"no text {key!r}")


def t(key: str, **values: object) -> str:
    """Return the text for `key` with its gaps filled, for the current reader."""
    template = template_for(key)
    missing = placeholders(template) - values.keys()
    if missing:
        raise TextError(f"text {key!r} needs {sorted(missing)}")
    return template.format(**values)
