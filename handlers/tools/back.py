"""BACK inside a tool goes back one question; anywhere else it still shows the menu."""

from __future__ import annotations

from handlers import menu
from handlers.conversation import Conversation
from handlers.registry import FLOWS, KEYWORDS, keyword
from handlers.types import Reply

BACK_FLOWS = frozenset({"cba", "checkin"})  # flows that understand BACK themselves
_elsewhere = KEYWORDS.get("BACK", menu.show_menu)


@keyword("BACK")
async def go_back(conv: Conversation, args: str) -> list[Reply]:
    """Step back one question in a tool, or show the menu as before."""
    flow = FLOWS.get(conv.state.flow)
    if conv.state.flow in BACK_FLOWS and flow is not None:
        return await flow(conv, "BACK")
    return await _elsewhere(conv, args)
