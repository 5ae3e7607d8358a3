"""Keywords, flows and menu items: features register here, the engine looks them up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers.conversation import Handler

KEYWORDS: dict[str, Handler] = {}
FLOWS: dict[str, Handler] = {}
FREE_TEXT_FLOWS: set[str] = set()  # flows that take the person's own words as answers


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


def flow(name: str, *, free_text: bool = False) -> Callable[[Handler], Handler]:
    """Register the handler that receives messages while a person is in flow `name`."""

    def register(func: Handler) -> Handler:
        FLOWS[name] = func
        if free_text:
            FREE_TEXT_FLOWS.add(name)
        return func

    return register


def menu_item(order: int, label_key: str, payload: str) -> None:
    """Add an entry to the main menu."""
    if all(item.payload != payload for item in MENU):
        MENU.append(MenuItem(order, label_key, payload))
        MENU.sort(key=lambda item: item.order)
