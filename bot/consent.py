"""The consent wording read with a person at enrolment, by version (texts in consent.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WORDING_FILE = Path(__file__).with_name("consent.toml")


@dataclass(frozen=True)
class ConsentWording:
    """One version of the consent wording: what taking part means, and the optional review."""

    version: str
    text: str
    review: str


@cache
def _load() -> tuple[str, dict[str, ConsentWording]]:
    data = tomllib.loads(WORDING_FILE.read_text(encoding="utf-8"))
    versions = {name: ConsentWording(name, " ".join(v["text"].split()),
                                     " ".join(v["review"].split()))
                for name, v in data["versions"].items()}
    return str(data["current"]), versions


def current_wording() -> ConsentWording:
    """Return the wording a Champion reads today."""
    current, versions = _load()
    return versions[current]


def wording(version: str) -> ConsentWording | None:
    """Return a version of the wording, or None if there is no such version."""
    return _load()[1].get(version)
