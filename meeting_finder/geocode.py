"""Resolve what a participant typed (postcode, town, "lat,lon") to a place, entirely offline."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from meeting_finder import postcodes
from meeting_finder.errors import PlaceNotFound
from meeting_finder.places import Town, dominant, fold, town_index

MAX_QUERY = 200  # longer input is not a place
_LATLON_RE = re.compile(r"^\s*([-+]?\d{1,3}(?:\.\d+)?)\s*[,; ]\s*([-+]?\d{1,3}(?:\.\d+)?)\s*$")
_PLACE_CHARS_RE = re.compile(r"[^\w\s,.'&()-]")

# Code-Point Open has no Northern Ireland postcodes, so a BT district falls back to its post town.
_BT_POST_TOWNS: dict[str, str] = {
    **{f"BT{n}": "Belfast" for n in range(1, 18)},
    **{f"BT{n}": "Belfast" for n in (29, 36, 37, 58)},
    "BT18": "Holywood", "BT19": "Bangor", "BT20": "Bangor", "BT21": "Donaghadee",
    "BT22": "Newtownards", "BT23": "Newtownards", "BT24": "Ballynahinch", "BT25": "Dromore",
    "BT26": "Hillsborough", "BT27": "Lisburn", "BT28": "Lisburn", "BT30": "Downpatrick",
    "BT31": "Castlewellan", "BT32": "Banbridge", "BT33": "Newcastle", "BT34": "Newry",
    "BT35": "Newry", "BT38": "Carrickfergus", "BT39": "Ballyclare", "BT40": "Larne",
    "BT41": "Antrim", "BT42": "Ballymena", "BT43": "Ballymena", "BT44": "Ballymena",
    "BT45": "Magherafelt", "BT46": "Maghera", "BT47": "Derry", "BT48": "Derry",
    "BT49": "Limavady", "BT51": "Coleraine", "BT52": "Coleraine", "BT53": "Ballymoney",
    "BT54": "Ballycastle", "BT55": "Portstewart", "BT56": "Portrush", "BT57": "Bushmills",
    "BT60": "Armagh", "BT61": "Armagh", "BT62": "Portadown", "BT63": "Portadown",
    "BT64": "Craigavon", "BT65": "Craigavon", "BT66": "Lurgan", "BT67": "Lurgan",
    "BT68": "Caledon", "BT69": "Aughnacloy", "BT70": "Dungannon", "BT71": "Dungannon",
    "BT74": "Enniskillen", "BT75": "Fivemiletown", "BT76": "Clogher", "BT77": "Augher",
    "BT78": "Omagh", "BT79": "Omagh", "BT80": "Cookstown", "BT81": "Castlederg",
    "BT82": "Strabane", "BT92": "Enniskillen", "BT93": "Enniskillen", "BT94": "Enniskillen",
}


@dataclass(frozen=True)
class Place:
    """A resolved place and how precisely we know it."""

    lat: float
    lon: float
    label: str
    precision: str  # "latlon" | "postcode" | "sector" | "outward" | "town"
    note: str | None = None  # said to the participant when we fell back to a coarser area
    asked: str | None = None  # with a note: the postcode we could not find (for the texts)


def _squash(text: str) -> str:
    """Upper-case and drop every space, dot and dash (for postcode matching)."""
    return re.sub(r"[\s.\-]+", "", text).upper()


def normalise_postcode(text: str) -> str | None:
    """Return a full UK postcode in canonical form ("ST3 2QH"), or None."""
    if not isinstance(text, str) or len(text) > 20:
        return None
    match = postcodes.FULL_RE.match(_squash(text))
    return f"{match.group(1)} {match.group(2)}" if match else None


def _normalise_sector(text: str) -> str | None:
    if len(text) > 20:
        return None
    cleaned = re.sub(r"\s+", " ", text.strip().upper())
    return cleaned if postcodes.SECTOR_RE.match(cleaned) else None


def _normalise_outward(text: str) -> str | None:
    if len(text) > 20:
        return None
    squashed = _squash(text)
    return squashed if postcodes.OUTWARD_RE.match(squashed) else None


def looks_like_postcode(text: str) -> bool:
    """Say whether `text` has the shape of a full postcode, a sector or an outward code."""
    if not isinstance(text, str):
        return False
    return bool(normalise_postcode(text) or _normalise_sector(text) or _normalise_outward(text))


def _clean(query: str) -> str:
    """Drop control and symbol characters (emoji, NULs) and collapse whitespace."""
    kept = "".join(
        ch if unicodedata.category(ch)[0] not in "CS" else " " for ch in query[: MAX_QUERY * 2]
    )
    return re.sub(r"\s+", " ", kept).strip()


def resolve_place(query: str) -> Place:
    """Resolve a postcode, sector, outward code, town or "lat,lon" offline; else PlaceNotFound."""
    if not isinstance(query, str):
        raise PlaceNotFound(repr(query), [], "send a postcode or a town name")
    if len(query) > MAX_QUERY:
        raise PlaceNotFound(query, [], "that is too long for a place: send a postcode or a town")
    text = _clean(query)
    if not text:
        raise PlaceNotFound(query, [], "send a postcode (like ST3 2QH) or a town name")
    latlon = _parse_latlon(text)
    if latlon is not None:
        lat, lon = latlon
        return Place(lat, lon, f"{lat:.5f},{lon:.5f}", "latlon")
    full = normalise_postcode(text)
    if full is not None:
        return _resolve_full(full, query)
    sector = _normalise_sector(text)
    if sector is not None:
        return _resolve_sector(sector, query)
    outward = _normalise_outward(text)
    if outward is not None:
        return _resolve_outward(outward, query, note=None)
    return _resolve_town(text, query)


def _parse_latlon(text: str) -> tuple[float, float] | None:
    match = _LATLON_RE.match(text)
    if not match:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


def _resolve_full(full: str, query: str) -> Place:
    outward, inward = full.split(" ")
    if postcodes.area_of(outward) == "BT":
        return _resolve_bt(outward, query, full)
    found = postcodes.lookup_full(full)
    if found is not None:
        return Place(found[0], found[1], full, "postcode")
    sector = f"{outward} {inward[0]}"
    found = postcodes.lookup_sector(sector)
    if found is not None:
        note = f"{full} is not in our list, so I used the {sector} area"
        return Place(found[0], found[1], sector, "sector", note, full)
    note = f"{full} is not in our list, so I used the {outward} area"
    return _resolve_outward(outward, query, note=note, asked=full)


def _resolve_sector(sector: str, query: str) -> Place:
    outward = sector.split(" ")[0]
    if postcodes.area_of(outward) == "BT":
        return _resolve_bt(outward, query, sector)
    found = postcodes.lookup_sector(sector)
    if found is not None:
        return Place(found[0], found[1], sector, "sector")
    note = f"{sector} is not in our list, so I used the {outward} area"
    return _resolve_outward(outward, query, note=note, asked=sector)


def _resolve_outward(outward: str, query: str, *, note: str | None,
                     asked: str | None = None) -> Place:
    area = postcodes.area_of(outward)
    if area == "BT":
        return _resolve_bt(outward, query, outward)
    found = postcodes.lookup_outward(outward)
    if found is not None:
        return Place(found[0], found[1], outward, "outward", note, asked)
    if area in postcodes.known_areas():
        suggestions = postcodes.nearby_outwards(outward)
        raise PlaceNotFound(query, suggestions, f"{outward} is not a postcode district I know")
    # Not a postcode after all: it may still be a short town name.
    return _resolve_town(query.strip(), query)


def _resolve_bt(outward: str, query: str, shown: str) -> Place:
    town_name = _BT_POST_TOWNS.get(outward)
    towns = town_index().exact(fold(town_name)) if town_name else []
    nir = [t for t in towns if t.nation == "NIR"]
    if not nir:
        raise PlaceNotFound(
            query,
            ["Belfast", "Derry", "Lisburn"],
            "Northern Ireland postcodes are not in our list: send your town name instead",
        )
    town = nir[0]
    note = f"Northern Ireland postcodes are not in our list, so I used {town.name} for {shown}"
    return Place(town.lat, town.lon, town.name, "town", note)


def _resolve_town(text: str, query: str) -> Place:
    index = town_index()
    key = fold(text)
    if not key or len(key) < 2:
        raise PlaceNotFound(query, [], "send a postcode (like ST3 2QH) or a town name")
    if " near " in f" {key} ":
        return _resolve_near(key, query)
    exact = index.exact(key)
    town = dominant(exact)
    if town is None and not exact:
        town = dominant(index.matches(key))
    elif town is None:
        # An exact name shared by several places: prefer one that clearly dominates the rest.
        town = dominant(sorted({*exact, *index.matches(key)}, key=lambda t: -t.population))
        if town is not None and town not in exact and exact[0].population > 0:
            town = None
    if town is not None:
        return Place(town.lat, town.lon, town.name, "town")
    candidates = exact or index.matches(key)
    if candidates:
        suggestions = [index.describe(t) for t in candidates[:3]]
        raise PlaceNotFound(query, suggestions, f"there is more than one {candidates[0].name}")
    suggestions = [t.name for t in index.close_names(key)]
    raise PlaceNotFound(query, suggestions, "I could not find that place: send a postcode")


def _resolve_near(key: str, query: str) -> Place:
    index = town_index()
    name, _, landmark_name = key.partition(" near ")
    landmarks = index.exact(landmark_name.strip())
    candidates = index.exact(name.strip()) or index.matches(name.strip())
    if not landmarks or not candidates:
        raise PlaceNotFound(query, [], "I could not find that place: send a postcode")
    landmark = landmarks[0]

    def distance(town: Town) -> float:
        return math.hypot(town.lat - landmark.lat, (town.lon - landmark.lon) * 0.6)

    town = min(candidates, key=distance)
    return Place(town.lat, town.lon, town.name, "town")
