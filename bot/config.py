"""Settings from the environment and `.env`: the only place configuration is read."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage import crypto
from storage.db import async_url
from storage.errors import DatabaseURLError

logger = logging.getLogger(__name__)
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
    secret_key: SecretStr = SecretStr(PLACEHOLDER)  # signs staff sessions and link tokens
    # The master key sealing each participant's data key (base64, 32 bytes). While rotating:
    # "new,old" (the first wraps, all unwrap); see `throughcare keys rotate`.
    data_key: SecretStr | None = None
    # The root of the blind index and address seal (base64, 32 bytes); it never rotates.
    blind_key: SecretStr | None = None
    local_mode: bool = True  # embedded default; False in production refuses placeholders
    log_level: str = "INFO"
    # `run`, `web` and `worker` wait for a database that does not answer at start: this many
    # tries after the first, pausing DB_START_WAIT seconds and doubling to 30 s (about two
    # minutes in all), then exit 3 (see README "When things fail").
    db_start_retries: int = Field(default=8, ge=0, le=1000)
    db_start_wait: float = Field(default=1.0, gt=0, le=60)
    # Database connections a process keeps open, and may open beyond them in a burst
    # (DB_POOL_OVERFLOW, closed again as they come back). Too few for the load and every
    # burst opens and closes connections: on PostgreSQL each is a new server process.
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_pool_overflow: int = Field(default=10, ge=0, le=500)
    # On SIGTERM, sends already on the wire get this long to finish and be recorded.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    staff_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)  # staff signed out after this
    # Largest request body accepted (webhooks, staff forms); the feeds upload page allows 5 MB.
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, le=100 * 1024 * 1024)
    # Message bodies (in and out) are blanked by the worker this many days after they came
    # or went; Twilio's copy of each text is blanked once delivered (unset: on outside local
    # mode; see scheduler.retention).
    body_retention_days: int = Field(default=90, ge=1, le=3650)
    twilio_redact_bodies: bool | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_bot_username: str | None = None  # e.g. ThroughcareBot: the release card's QR link
    # Messages a second to all chats: Telegram's limit is about 30 (higher with paid
    # broadcasts); one chat still gets about one a second whatever this says.
    telegram_mps: float = Field(default=30.0, gt=0, le=10_000)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_mps: float = Field(default=1.0, gt=0, le=10_000)  # segments a second we may send
    # WhatsApp through the same Twilio account: our WhatsApp sender number (E.164, no
    # "whatsapp:"), its own send budget, and the approved templates for what we start outside
    # the 24-hour window, as JSON: {"reminder.meeting_day": {"sid": "HX...", "variables":
    # ["meeting", "when"], "cy": "HX..."}, "broadcast": {"sid": "HX...", "variables":
    # ["body"]}} (see bot.channels.whatsapp).
    whatsapp_from_number: str | None = None
    whatsapp_mps: float = Field(default=20.0, gt=0, le=10_000)  # messages a second
    whatsapp_templates: dict[str, dict[str, Any]] = Field(default_factory=dict)

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
        if not self.local_mode and not (self.data_key and self.blind_key):
            raise ValueError(f"{'BLIND_KEY' if self.data_key else 'DATA_KEY'}: set it outside "
                             "local mode (`throughcare keys new` makes one)")
        if bool(self.data_key) != bool(self.blind_key):
            raise ValueError(f"{'BLIND_KEY' if self.data_key else 'DATA_KEY'}: set DATA_KEY "
                             "and BLIND_KEY together")
        if self.data_key and self.blind_key:
            try:
                crypto.keyring_from(self.data_key.get_secret_value(),
                                    self.blind_key.get_secret_value())
            except crypto.SealError as exc:
                raise ValueError(f"DATA_KEY: {exc}") from None
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

    @property
    def twilio_redacts(self) -> bool:
        """Say whether Twilio's copies of our texts are blanked after delivery."""
        if self.twilio_redact_bodies is None:
            return not self.local_mode
        return self.twilio_redact_bodies

    @property
    def whatsapp_enabled(self) -> bool:
        """Say whether WhatsApp through Twilio is configured."""
        return self.twilio_enabled and bool(self.whatsapp_from_number)


def key_file(settings: Settings) -> Path | None:
    """Return where local mode keeps its generated keys: beside the SQLite file."""
    url = settings.database_url
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    return Path(url.removeprefix("sqlite:///")).with_suffix(".keys")


def _local_keys(settings: Settings) -> crypto.Keyring:
    """Return local mode's keys: the key file's, new ones for a new database, or dev keys."""
    path = key_file(settings)
    if path is not None and not path.exists() \
            and not Path(settings.database_url.removeprefix("sqlite:///")).exists():
        keys = {"data_key": crypto.new_secret(), "blind_key": crypto.new_secret()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(keys, out)
            logger.info("generated data keys in %s: keep them with the database", path)
        except FileExistsError:
            pass  # another process made them first
    if path is not None and path.exists():
        keys = json.loads(path.read_text())
        return crypto.keyring_from(keys["data_key"], keys["blind_key"])
    # A database written before keys were generated: it was sealed with the development keys.
    return crypto.development_keyring()


def install_keys(settings: Settings) -> None:
    """Set up the process's keyring from settings (local mode may generate or use a file)."""
    if settings.data_key and settings.blind_key:
        keyring = crypto.keyring_from(settings.data_key.get_secret_value(),
                                      settings.blind_key.get_secret_value())
    else:
        keyring = _local_keys(settings)
    crypto.install(keyring)


def load_settings(**overrides: object) -> Settings:
    """Read settings and set up the keys, turning errors into one clear line naming the
    setting."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "SETTINGS"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if msg.startswith(tuple(f"{n}:" for n in ("SECRET_KEY", "DATA_KEY", "BLIND_KEY",
                                                   "TWILIO_AUTH_TOKEN",
                                                   "TWILIO_FROM_NUMBER",
                                                   "TELEGRAM_WEBHOOK_SECRET"))):
            raise ConfigError(f"invalid setting {msg}") from None
        raise ConfigError(f"invalid setting {name}: {msg}") from None
    try:
        install_keys(settings)
    except (OSError, ValueError, KeyError, crypto.SealError) as exc:
        raise ConfigError(f"invalid keys: {exc}") from None
    return settings
