"""Import every feature module so its keywords, flows and menu items are registered."""

from handlers import meetings, menu  # noqa: F401
