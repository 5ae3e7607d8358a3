"""Errors raised by the meeting finder.

MeetingFinderError
├── PlaceNotFound   a place could not be resolved offline (carries "did you mean" suggestions)
├── FeedError       a feed could not be read at all (bad file, bad JSON, HTTP failure)
└── ExportError     a meeting cannot be written in the requested format
"""

from __future__ import annotations


class MeetingFinderError(Exception):
    """Base class of every meeting finder error."""


class PlaceNotFound(MeetingFinderError):
    """A place could not be resolved; `suggestions` holds up to three alternatives."""

    def __init__(self, query: str, suggestions: list[str] | None = None, reason: str = "") -> None:
        self.query = query
        self.suggestions = list(suggestions or [])[:3]
        self.reason = reason
        shown = query if len(query) <= 40 else query[:37] + "..."
        message = reason or f"could not find {shown!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(self.suggestions) + "?"
        super().__init__(message)


class FeedError(MeetingFinderError):
    """A feed could not be read at all (single bad rows are reported, not raised)."""


class ExportError(MeetingFinderError):
    """A meeting cannot be exported in the requested format."""
