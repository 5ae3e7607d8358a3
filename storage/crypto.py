"""Encryption at rest: sealed columns, per-participant data keys and blind indexes.

Design (what is where, and why):

- Two secrets come from settings: `DATA_KEY`, the master key (a comma-separated list of
  base64 keys: the first wraps, every one unwraps, so a rotation can run while the service
  does), and `BLIND_KEY`, the stable root of the blind index, the address seal and the
  service key (it never rotates: every equality lookup depends on it). `install(keyring)`
  sets them up once per process (`bot.config.load_settings` does); with nothing installed
  the fixed development keys are used (tests and the embedded demo; never in production,
  where settings refuse to start without real keys).
- Each participant has their own random 256-bit data key, kept only wrapped by the master
  key (AES-GCM) in the `participantkey` table; `participant.key_id` names it. Names, message
  bodies, check-in notes, tool answers and conversation data are sealed with it: the
  stored value is `s1:<key id>:<base64url(nonce + AES-GCM ciphertext + tag)>`, the key id
  also being the associated data. DELETE deletes the wrapped key, so every copy of those
  values anywhere (the SQLite -wal file, PostgreSQL dead tuples, a backup) can no longer be
  opened: erasure by key, not by finding every copy. (A backup also holds the wrapped key;
  rotating the master key and destroying the old one ends that too.)
- Addresses (phone numbers, Telegram and WhatsApp ids) are sealed deterministically with
  AES-SIV under a key derived from `BLIND_KEY`: `a1:<base64url(siv + ciphertext)>`. The
  same address always gives the same value, so the column is its own keyed blind index:
  unique constraints, `address == :x`, joins and the per-address send order keep working
  with no change to any query, while the database holds no number. `blind_index()` (an
  HMAC-SHA256) is the one-way index where nothing needs reading back (`hash_address`).
- Columns do it themselves: `SealedText`, `SealedJSON` and `SealedAddress` are
  TypeDecorators, so the ORM attributes keep holding plaintext for our code. A type has
  no row, so it cannot know whose key to use: listeners in `storage.models.sealed` seal a
  row's values with its participant's key just before INSERT/UPDATE (the mapper events
  have the connection to look the key up) and put the plaintext back after; a value bound
  with no owner known (a Core insert, a row for no participant) is sealed with the
  service key. Only `Ciphertext` values pass a bind unchanged, so text a person types
  that merely looks sealed is still sealed.
- Reading needs no row either: the value names its key id. Opened keys are cached per
  process for `KEY_TTL` seconds; a miss reads the wrapped key on a fresh connection of the
  engine the row came from. A key that is gone reads as the column's `erased` value.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text, event, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)

SEALED = "s1:"  # a value sealed with a data key (random nonce)
ADDRESS = "a1:"  # an address sealed deterministically (AES-SIV)
SERVICE = "svc"  # the key id of the service key (values with no participant)
KEY_TTL = 600.0  # seconds an opened data key stays cached (a DELETE elsewhere ends it after)
_DEV_ROOT = b"throughcare development keys: public, for tests and the demo only"


class SealError(Exception):
    """A sealed value or key cannot be read with the keys configured."""


class Ciphertext(str):
    """A value already sealed: binds pass it through unchanged."""


def b64e(raw: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(value: str) -> bytes:
    """Decode base64 or base64url, padded or not."""
    value = value.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _derive(root: bytes, label: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=f"throughcare {label}".encode()).derive(root)


def new_secret() -> str:
    """Return a fresh 256-bit key as base64 (for DATA_KEY or BLIND_KEY)."""
    return b64e(secrets.token_bytes(32))


@dataclass(frozen=True)
class Keyring:
    """The master keys (first wraps, all unwrap) and the blind-index root."""

    masters: tuple[bytes, ...]
    blind: bytes

    def __post_init__(self) -> None:
        if not self.masters or any(len(k) != 32 for k in (*self.masters, self.blind)):
            raise SealError("keys must be 32 bytes (44 base64 characters)")

    @staticmethod
    def master_id(key: bytes) -> str:
        """Return the short public id of a master key, stored with what it wraps."""
        return hmac.new(key, b"throughcare master id", hashlib.sha256).hexdigest()[:8]

    @property
    def current_id(self) -> str:
        """Return the id of the master key that wraps new keys."""
        return self.master_id(self.masters[0])

    @cached_property
    def index_key(self) -> bytes:
        """Return the HMAC key of the blind index."""
        return _derive(self.blind, "blind index")

    @cached_property
    def address_siv(self) -> AESSIV:
        """Return the deterministic cipher for addresses."""
        return AESSIV(_derive(self.blind, "address seal", 64))

    @cached_property
    def service_key(self) -> bytes:
        """Return the key of values that belong to no participant."""
        return _derive(self.blind, "service data key")

    def wrap(self, kid: str, key: bytes) -> str:
        """Wrap a data key with the current master key."""
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.masters[0]).encrypt(nonce, key, kid.encode())
        return f"{self.current_id}:{b64e(nonce + sealed)}"

    def unwrap(self, kid: str, wrapped: str) -> bytes:
        """Unwrap a data key with whichever master key wrapped it."""
        mid, _, blob = wrapped.partition(":")
        for master in self.masters:
            if self.master_id(master) == mid:
                raw = b64d(blob)
                try:
                    return AESGCM(master).decrypt(raw[:12], raw[12:], kid.encode())
                except InvalidTag:
                    raise SealError(f"data key {kid} does not open") from None
        raise SealError(f"data key {kid} is wrapped by master {mid}, which is not configured")


def keyring_from(data_key: str, blind_key: str) -> Keyring:
    """Build a keyring from settings values (base64; DATA_KEY may list old keys after)."""
    try:
        masters = tuple(b64d(k) for k in data_key.split(",") if k.strip())
        return Keyring(masters=masters, blind=b64d(blind_key))
    except (ValueError, TypeError):
        raise SealError("keys must be base64") from None


def development_secrets() -> tuple[str, str]:
    """Return the development DATA_KEY and BLIND_KEY values (public: tests only)."""
    return b64e(_derive(_DEV_ROOT, "master")), b64e(_derive(_DEV_ROOT, "blind"))


def development_keyring() -> Keyring:
    """Return the fixed development keys (public: tests and the demo only)."""
    return keyring_from(*development_secrets())


class _Process:
    """What one process holds: its keyring and the data keys it has opened."""

    keyring: Keyring | None = None
    opened: dict[str, tuple[bytes, float]] = {}  # key id: (key, until)
    wrapped: dict[str, str] = {}  # every wrapped key, as last read at a miss
    wrapped_until = 0.0  # when that reading is too old to believe
    gone: dict[str, float] = {}  # key ids found destroyed: until when to believe it
    engines: weakref.WeakValueDictionary[int, Engine] = weakref.WeakValueDictionary()


def install(keyring: Keyring) -> None:
    """Make `keyring` the process's keys (once at start; again only in tests)."""
    _Process.keyring = keyring


def current() -> Keyring:
    """Return the process's keyring, the development keys if none was installed."""
    if _Process.keyring is None:
        logger.warning("no keys installed: using the public development keys")
        _Process.keyring = development_keyring()
    return _Process.keyring


def blind_index(value: str, length: int = 16) -> str:
    """Return a keyed one-way index of a value (hex HMAC-SHA256, cut to `length`)."""
    return hmac.new(current().index_key, value.encode(), hashlib.sha256).hexdigest()[:length]


def seal_address(value: str) -> Ciphertext:
    """Seal an address deterministically: the same address, the same value."""
    return Ciphertext(ADDRESS + b64e(current().address_siv.encrypt(value.encode(), None)))


def open_address(value: str) -> str:
    """Open a sealed address (plain values from before sealing pass through)."""
    if not value.startswith(ADDRESS):
        return value
    try:
        return current().address_siv.decrypt(b64d(value[len(ADDRESS):]), None).decode()
    except InvalidTag:
        raise SealError("address sealed with another BLIND_KEY") from None


def new_data_key() -> tuple[str, bytes]:
    """Return a fresh data key and its id, remembered as opened."""
    kid, key = secrets.token_hex(8), AESGCM.generate_key(256)
    remember(kid, key)
    return kid, key


def remember(kid: str, key: bytes) -> None:
    """Cache an opened data key."""
    _Process.opened[kid] = (key, time.monotonic() + KEY_TTL)


def forget(kid: str | None) -> None:
    """Drop an opened data key from this process (it was destroyed)."""
    if kid is not None:
        _Process.opened.pop(kid, None)
        _Process.wrapped.pop(kid, None)


def seal_with(kid: str, key: bytes, plaintext: str) -> Ciphertext:
    """Seal text with a data key."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), kid.encode())
    return Ciphertext(f"{SEALED}{kid}:{b64e(nonce + sealed)}")


def seal_service(plaintext: str) -> Ciphertext:
    """Seal text that belongs to no participant with the service key."""
    return seal_with(SERVICE, current().service_key, plaintext)


def dump_json(value: Any) -> str:
    """Return JSON as every JSON column writes it."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def key_id_of(value: str | None) -> str | None:
    """Return the key id a sealed value names, or None."""
    if not value or not value.startswith(SEALED):
        return None
    return value[len(SEALED):].partition(":")[0]


def open_text(value: str, dialect: Dialect | None = None) -> str | None:
    """Open a sealed value; None when its key was destroyed."""
    kid, _, blob = value[len(SEALED):].partition(":")
    raw = b64d(blob)
    for attempt in range(2):
        key = _key(kid, dialect, fresh=attempt == 1)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], kid.encode()).decode()
        except InvalidTag:
            forget(kid)
    raise SealError(f"a value sealed with key {kid} does not open")


def _key(kid: str, dialect: Dialect | None, *, fresh: bool = False) -> bytes | None:
    if kid == SERVICE:
        return current().service_key
    cached = _Process.opened.get(kid)
    if cached is not None and cached[1] > time.monotonic() and not fresh:
        return cached[0]
    wrapped = _load_wrapped(kid, dialect)
    if wrapped is None:
        forget(kid)
        return None
    key = current().unwrap(kid, wrapped)
    remember(kid, key)
    return key


def read_wrapped(conn: Connection, kid: str) -> str | None:
    """Return the wrapped data key with this id, if it still exists."""
    found = conn.execute(text("SELECT wrapped FROM participantkey WHERE id = :kid"),
                         {"kid": kid}).scalar()
    return str(found) if found is not None else None


def _load_wrapped(kid: str, dialect: Dialect | None) -> str | None:
    """Return a wrapped key from the database a row came from (None: destroyed)."""
    engine = _Process.engines.get(id(dialect)) if dialect is not None else None
    if engine is None:
        raise SealError(f"data key {kid} is not open and no database is known to load it")
    if kid in _Process.wrapped and _Process.wrapped_until > time.monotonic():
        return _Process.wrapped[kid]
    gone = _Process.gone.get(kid)
    if gone is not None and gone > time.monotonic():
        return None
    # A result may be read where no IO can be awaited (a Core result's rows are made as
    # they are read), so every key is read at once on a connection of its own, in a thread.
    # Misses are rare: a key read on this process for the first time in KEY_TTL seconds.
    with ThreadPoolExecutor(1) as pool:
        _Process.wrapped = pool.submit(asyncio.run, _all_wrapped(engine.url)).result(60)
    _Process.wrapped_until = time.monotonic() + KEY_TTL
    found = _Process.wrapped.get(kid)
    if found is None:
        _Process.gone[kid] = time.monotonic() + KEY_TTL
    return found


async def _all_wrapped(url: URL) -> dict[str, str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, wrapped FROM participantkey"))
            return {str(kid): str(wrapped) for kid, wrapped in rows}
    finally:
        await engine.dispose()


@event.listens_for(Engine, "engine_connect")
def _remember_engine(conn: Connection) -> None:
    _Process.engines[id(conn.dialect)] = conn.engine


class SealedText(TypeDecorator[str]):
    """Text sealed at rest; reads back as plaintext, or `erased` once its key is gone."""

    impl = Text
    cache_ok = True

    def __init__(self, erased: str | None = None) -> None:
        super().__init__()
        self.erased = erased

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if not value or isinstance(value, Ciphertext):
            return value
        return seal_service(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not value.startswith(SEALED):
            return value  # blank, or written before sealing
        opened = open_text(value, dialect)
        return self.erased if opened is None else opened


class SealedJSON(TypeDecorator[Any]):
    """JSON sealed at rest (empty containers stay plain: they say nothing)."""

    impl = Text
    cache_ok = True

    def __init__(self, erased: str = "{}") -> None:
        super().__init__()
        self.erased = erased  # JSON of what a value reads as once its key is gone

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, Ciphertext):
            return value
        if not value:
            return dump_json(value)
        return seal_service(dump_json(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.startswith(SEALED):
            opened = open_text(value, dialect)
            return json.loads(self.erased if opened is None else opened)
        return json.loads(value)


class SealedAddress(TypeDecorator[str]):
    """An address sealed deterministically, so equality still works in SQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if not value or isinstance(value, Ciphertext):
            return value
        return seal_address(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return value if value is None else open_address(value)


async def rotate(engine: AsyncEngine, *, batch: int = 500) -> int:
    """Re-wrap every data key not under the current master key; return how many.

    Works in short transactions while the service runs: a process that has the new key
    first in DATA_KEY and the old one after it reads both wrappings.
    """
    ring, done = current(), 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(
                text("SELECT id, wrapped FROM participantkey WHERE wrapped NOT LIKE :cur "
                     "ORDER BY id LIMIT :n"), {"cur": f"{ring.current_id}:%", "n": batch},
            )).all()
            for kid, wrapped in rows:
                await conn.execute(
                    text("UPDATE participantkey SET wrapped = :w WHERE id = :kid "
                         "AND wrapped = :old"),
                    {"w": ring.wrap(kid, ring.unwrap(kid, wrapped)), "kid": kid, "old": wrapped})
        done += len(rows)
        if len(rows) < batch:
            return done


async def key_census(engine: AsyncEngine) -> dict[str, int]:
    """Count data keys by the id of the master key that wraps them."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT wrapped FROM participantkey"))).all()
    counts: dict[str, int] = {}
    for (wrapped,) in rows:
        mid = str(wrapped).partition(":")[0]
        counts[mid] = counts.get(mid, 0) + 1
    return counts
