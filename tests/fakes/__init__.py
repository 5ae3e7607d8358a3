"""Faithful local fakes of the Telegram Bot API and the Twilio REST API (ASGI apps)."""
