"""Keywords, flows and menu items: features register here, the engine looks them up."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from handlers.conversation import Handler

KEYWORDS: dict[str, Handler] = {}
FLOWS: dict[str, Handler] = {}
# Flow steps that take the person's own words as answers: flow -> steps (None: every step).
FREE_TEXT: dict[str, frozenset[str] | None] = {}
# Whole-message words a flow understands itself, so they beat a keyword of the same name:
# NEXT inside URGE is the next step, not the next page of meetings.
FLOW_WORDS: dict[str, frozenset[str]] = {}


@dataclass(frozen=True)
class MenuItem:
    """One entry of the main menu."""

    order: int
    label_key: str  # text key of the label
    payload: str  # keyword sent back when chosen


MENU: list[MenuItem] = []


def keyword(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more keywords (matched on the first word, any case)."""

    def register(func: Handler) -> Handler:
        for name in names:
            KEYWORDS[name.upper()] = func
        return func

    return register


def flow(
    name: str, *, free_text: bool | frozenset[str] = False, words: frozenset[str] = frozenset()
) -> Callable[[Handler], Handler]:
    """Register the handler for flow `name`; `free_text` names steps that take own words."""

    def register(func: Handler) -> Handler:
        FLOWS[name] = func
        FLOW_WORDS[name] = frozenset(w.upper() for w in words)
        if free_text is True:
            FREE_TEXT[name] = None
        elif free_text:
            FREE_TEXT[name] = frozenset(free_text)
        return func

    return register


def menu_item(order: int, label_key: str, payload: str) -> None:
    """Add an entry to the main menu."""
    if all(item.payload != payload for item in MENU):
        MENU.append(MenuItem(order, label_key, payload))
        MENU.sort(key=lambda item: item.order)


def takes_free_text(flow_name: str, step: str) -> bool:
    """Say whether this step of a flow takes the person's own words."""
    if flow_name not in FREE_TEXT:
        return False
    steps = FREE_TEXT[flow_name]
    return steps is None or step in steps


def flow_word(flow_name: str, text: str) -> bool:
    """Say whether the whole message is one of the flow's own words (any case, no spaces)."""
    words = FLOW_WORDS.get(flow_name, frozenset())
    return bool(words) and re.sub(r"[^A-Za-z0-9_]", "", text).upper() in words
