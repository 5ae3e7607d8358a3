"""All participant-facing texts: data in `texts/*.toml`, looked up by dotted key."""

from __future__ import annotations

import string
import tomllib
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


@cache
def all_texts() -> dict[str, str]:
    """Load every text file into one flat mapping of dotted keys."""
    out: dict[str, str] = {}
    for path in sorted(TEXT_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            _flatten("", tomllib.load(fh), out, path.name)
    return out


def placeholders(template: str) -> set[str]:
    """Return the names of the gaps in a template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def t(key: str, **values: object) -> str:
    """Return the text for `key` with its gaps filled; every gap must be given."""
    try:
        template = all_texts()[key]
    except KeyError:
        raise TextError(f"no text {key!r}") from None
    missing = placeholders(template) - values.keys()
    if missing:
        raise TextError(f"text {key!r} needs {sorted(missing)}")
    return template.format(**values)
