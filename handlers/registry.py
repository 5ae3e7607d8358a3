"""Keywords, flows and menu items: features register here, the engine looks them up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers.conversation import Handler

KEYWORDS: dict[str, Handler] = {}
FLOWS: dict[str, Handler] = {}
# Flow steps that take the person's own words as answers: flow -> steps (None: every step).
FREE_TEXT: dict[str, frozenset[str] | None] = {}


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
    name: str, *, free_text: bool | frozenset[str] = False
) -> Callable[[Handler], Handler]:
    """Register the handler for flow `name`; `free_text` names steps that take own words."""

    def register(func: Handler) -> Handler:
        FLOWS[name] = func
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
