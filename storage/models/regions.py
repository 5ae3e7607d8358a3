"""Regions an admin defines by geography: postcode areas or districts, or a centre and radius."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import AutoString, Field, SQLModel

from storage.models.common import JSONText, UTCDateTime, utcnow


class Region(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=AutoString(100), unique=True)  # matched in any case
    # Postcode areas ("ST") or districts ("ST3"), upper case without spaces.
    postcodes: list[str] | None = Field(default_factory=list, sa_type=JSONText)
    centre_lat: float | None = None
    centre_lon: float | None = None
    radius_miles: float | None = None  # set with the centre, or all three are None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
