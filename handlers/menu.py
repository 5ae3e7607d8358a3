"""The main menu and the simple keywords: MENU, HELP."""

from __future__ import annotations

from handlers.conversation import Conversation
from handlers.registry import MENU, keyword, menu_item
from handlers.texts import t
from handlers.types import Choice, Reply

menu_item(10, "menu.meetings", "MEETINGS")
menu_item(90, "menu.help", "HELP")


def menu_reply() -> Reply:
    """Return the main menu as a reply with choices."""
    return Reply(t("menu.title"), choices=tuple(Choice(t(i.label_key), i.payload) for i in MENU))


@keyword("MENU", "HI", "HELLO", "HOME", "BACK", "OPTIONS")
async def show_menu(conv: Conversation, args: str) -> list[Reply]:
    """Leave any flow and show the menu."""
    conv.reset()
    return [menu_reply()]


@keyword("HELP", "INFO")
async def show_help(conv: Conversation, args: str) -> list[Reply]:
    """Explain the service in a few words; inside a tool, say how to carry on with it."""
    if conv.state.flow != "menu":
        # No menu here: its numbers would take over from the question the person is on.
        return [Reply(f'{t("help.text")}\n{t("help.in_flow")}')]
    return [Reply(t("help.text")), menu_reply()]
