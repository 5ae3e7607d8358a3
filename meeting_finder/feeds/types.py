"""Meeting type codes: Meeting Guide's, plus SMART Recovery ones that reuse none of them."""

from __future__ import annotations

from storage.models.meetings import Access

# Meeting Guide already uses FF (Fragrance Free), C (Closed), O (Open), ONL (Online) and more,
# so every SMART code starts with "SMART" and cannot collide with a current or future code.
SMART = "SMART"  # a SMART Recovery meeting
SMART_FAMILY = "SMART-FF"  # SMART Family & Friends (for those affected by someone's addiction)
SMART_CLOSED = "SMART-CLOSED"  # treatment-service clients only: never offered to participants
SMART_PRISON = "SMART-PRISON"  # inside a prison: never offered to released participants
SMART_TYPES = {
    SMART: "SMART Recovery",
    SMART_FAMILY: "SMART Family & Friends",
    SMART_CLOSED: "Treatment service clients only",
    SMART_PRISON: "In prison",
}
ACCESS_TYPES = {SMART_CLOSED: Access.CLOSED, SMART_PRISON: Access.PRISON}
ONLINE_TYPE = "ONL"  # Meeting Guide: meets online
TEMPORARILY_CLOSED = "TC"  # Meeting Guide: location temporarily closed


def access_from_types(types: list[str]) -> Access:
    """Return who may come, from SMART access codes in a meeting's types (default open)."""
    for code in (SMART_PRISON, SMART_CLOSED):
        if code in types:
            return ACCESS_TYPES[code]
    return Access.OPEN


def types_with_access(types: list[str] | None, access: Access | str) -> list[str]:
    """Return a meeting's types with its SMART access code added (for export)."""
    out = [t for t in (types or []) if t not in ACCESS_TYPES]
    for code, value in ACCESS_TYPES.items():
        if str(access) == value.value:
            out.append(code)
    return out
