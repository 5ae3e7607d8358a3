"""Settings from the environment and `.env`: the only place configuration is read."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.db import async_url
from storage.errors import DatabaseURLError

PLACEHOLDER = "change-me"
BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,28}[Bb][Oo][Tt]")  # Telegram's rule


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it in one line."""


class Settings(BaseSettings):
    """Every setting the service reads, with embedded-default values."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'throughcare.db'}")
    timezone: str = "Europe/London"
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(PLACEHOLDER)
    local_mode: bool = True  # embedded default; False in production refuses placeholders
    log_level: str = "INFO"
    staff_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)  # staff signed out after this
    # Largest request body accepted (webhooks, staff forms); the feeds upload page allows 5 MB.
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, le=100 * 1024 * 1024)

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_bot_username: str | None = None  # e.g. ThroughcareBot: the release card's QR link

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_mps: float = Field(default=1.0, gt=0, le=10_000)  # segments a second we may send

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            async_url(value)
        except DatabaseURLError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("telegram_bot_username")
    @classmethod
    def _bot_username(cls, value: str | None) -> str | None:
        name = (value or "").strip().removeprefix("@")
        if not name:
            return None
        if not BOT_USERNAME.fullmatch(name):
            raise ValueError("must be a Telegram bot's username: 5-32 letters, digits or _, "
                             "ending in bot")
        return name

    @field_validator("public_base_url", "telegram_api_base_url", "twilio_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> Settings:
        if not self.local_mode and self.secret_key.get_secret_value() == PLACEHOLDER:
            raise ValueError("SECRET_KEY: set a real secret outside local mode")
        if not self.local_mode and self.telegram_bot_token and not self.telegram_webhook_secret:
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET: set it so only Telegram can call our webhook"
            )
        if self.twilio_account_sid and not self.twilio_auth_token:
            raise ValueError("TWILIO_AUTH_TOKEN: needed when TWILIO_ACCOUNT_SID is set")
        if self.twilio_account_sid and not (
            self.twilio_from_number or self.twilio_messaging_service_sid
        ):
            raise ValueError(
                "TWILIO_FROM_NUMBER: set it or TWILIO_MESSAGING_SERVICE_SID to send SMS"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        """Return the service time zone."""
        return ZoneInfo(self.timezone)

    @property
    def https(self) -> bool:
        """Say whether the public address is https (staff cookies are then Secure)."""
        return self.public_base_url.startswith("https://")

    @property
    def telegram_enabled(self) -> bool:
        """Say whether Telegram credentials are configured."""
        return self.telegram_bot_token is not None

    @property
    def twilio_enabled(self) -> bool:
        """Say whether Twilio credentials are configured."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one clear line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "SETTINGS"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if msg.startswith(tuple(f"{n}:" for n in ("SECRET_KEY", "TWILIO_AUTH_TOKEN",
                                                   "TWILIO_FROM_NUMBER",
                                                   "TELEGRAM_WEBHOOK_SECRET"))):
            raise ConfigError(f"invalid setting {msg}") from None
        raise ConfigError(f"invalid setting {name}: {msg}") from None
