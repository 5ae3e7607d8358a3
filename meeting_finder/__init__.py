"""Meetings: offline geocoding, nearest search, next occurrence in local time, feeds."""
