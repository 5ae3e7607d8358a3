"""The trust tests reuse the channel stack: our app wired to the fake Telegram and Twilio."""

from tests.bot.conftest import clock, enrolled, stack  # noqa: F401  (fixtures)
