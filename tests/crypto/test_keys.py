"""Keys: settings refuse to run without them, local mode makes its own, rotation re-wraps."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import _register_subapps, app
from bot.config import ConfigError, load_settings
from storage import crypto
from storage.db import session_scope
from storage.models import Participant
from storage.models.sealed import seal_existing
from storage.participants import enrol, find_identity, find_linked, hash_address
from tests.auxil.builders import NOW

PRODUCTION = {"local_mode": False, "secret_key": "a-real-secret-for-this-test-only",
              "database_url": "sqlite:///unused.db", "_env_file": None}


@pytest.fixture(autouse=True)
def _restore_keys() -> Iterator[None]:
    """Put the process's keys back as they were (settings install keys process-wide)."""
    before = crypto._Process.keyring
    yield
    crypto.install(before or crypto.development_keyring())


def _ring(*masters: str, blind: str) -> crypto.Keyring:
    return crypto.keyring_from(",".join(masters), blind)


def test_production_refuses_to_start_without_keys() -> None:
    with pytest.raises(ConfigError, match="DATA_KEY: set it outside local mode"):
        load_settings(**PRODUCTION)
    with pytest.raises(ConfigError, match="BLIND_KEY"):
        load_settings(**PRODUCTION, data_key=crypto.new_secret())
    with pytest.raises(ConfigError, match="DATA_KEY: keys must be"):
        load_settings(**PRODUCTION, data_key="c2hvcnQ=", blind_key=crypto.new_secret())
    data, blind = crypto.new_secret(), crypto.new_secret()
    load_settings(**PRODUCTION, data_key=data, blind_key=blind)
    assert crypto.current() == _ring(data, blind=blind)


def test_local_mode_keeps_generated_keys_beside_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    load_settings(database_url=url, _env_file=None)
    keys = tmp_path / "new.keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    first = crypto.current()
    assert first != crypto.development_keyring()
    load_settings(database_url=url, _env_file=None)  # a restart reads the same keys
    saved = json.loads(keys.read_text())
    assert crypto.current() == first == _ring(saved["data_key"], blind=saved["blind_key"])


def test_an_existing_local_database_without_a_key_file_keeps_the_development_keys(
        tmp_path: Path) -> None:
    (tmp_path / "old.db").write_bytes(b"")
    load_settings(database_url=f"sqlite:///{tmp_path / 'old.db'}", _env_file=None)
    assert crypto.current() == crypto.development_keyring()
    assert not (tmp_path / "old.keys").exists()


def test_the_development_secrets_load_as_the_development_keys() -> None:
    data, blind = crypto.development_secrets()
    load_settings(**PRODUCTION, data_key=data, blind_key=blind)
    assert crypto.current() == crypto.development_keyring()


def test_the_address_hash_is_keyed() -> None:
    unsalted = hashlib.sha256(b"sms:+447700900123").hexdigest()[:16]
    crypto.install(_ring(crypto.new_secret(), blind=crypto.new_secret()))
    one = hash_address("sms:+447700900123")
    crypto.install(_ring(crypto.new_secret(), blind=crypto.new_secret()))
    assert one != hash_address("sms:+447700900123") and unsalted not in (one,)


def test_keys_new_prints_settings_that_load() -> None:
    _register_subapps()
    result = CliRunner().invoke(app, ["keys", "new"])
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    load_settings(**PRODUCTION, data_key=values["DATA_KEY"], blind_key=values["BLIND_KEY"])


def _fresh_process() -> None:
    """Forget every opened key, as a process just started would have none."""
    crypto._Process.opened.clear()
    crypto._Process.wrapped.clear()


async def _names(engine: AsyncEngine) -> list[str]:
    async with session_scope(engine) as session:
        rows = await session.exec(select(Participant.display_name))  # a Core-shaped read
        return sorted(rows.all())


async def test_rotation_rewraps_every_key_and_the_old_master_can_go(engine: AsyncEngine) -> None:
    old, new, blind = crypto.new_secret(), crypto.new_secret(), crypto.new_secret()
    crypto.install(_ring(old, blind=blind))
    async with session_scope(engine) as session:
        for name in ("Ann", "Bea", "Cal"):
            await enrol(session, prison_name="HMP Test", display_name=name,
                        release_date=date(2026, 12, 1), release_postcode=None, now=NOW)
    old_id = crypto.current().current_id

    crypto.install(_ring(new, old, blind=blind))  # every process: new first, old after
    assert await crypto.key_census(engine) == {old_id: 3}
    assert await crypto.rotate(engine, batch=2) == 3
    assert await crypto.key_census(engine) == {crypto.current().current_id: 3}
    assert await crypto.rotate(engine) == 0

    crypto.install(_ring(new, blind=blind))  # the old master key destroyed
    _fresh_process()
    assert await _names(engine) == ["Ann", "Bea", "Cal"]
    crypto.install(_ring(old, blind=blind))
    _fresh_process()
    with pytest.raises(crypto.SealError, match="not configured"):
        await _names(engine)


async def test_rows_from_before_sealing_are_sealed_by_keys_seal(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO participant (id, display_name, release_date, phone, preferred_channel,"
            " status, sessions_inside, timezone, quiet_start_hour, quiet_end_hour,"
            " sessions_count, hours_total, created_at, updated_at, staff_review_consent,"
            " language, whatsapp_fallback) VALUES (7, 'Legacy Lou', '2026-12-01',"
            " '+447700900888', 'sms', 'active', 0, 'Europe/London', 21, 8, 0, 0,"
            " '2026-11-01 00:00:00', '2026-11-01 00:00:00', false, 'en', 'wait')"))
        await conn.execute(text(
            "INSERT INTO channelidentity (participant_id, channel, address, status, linked_at,"
            " updated_at) VALUES (7, 'sms', '+447700900888', 'active',"
            " '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
    counts = await seal_existing(engine, batch=1)
    assert counts["participant"] == 1 and counts["channelidentity"] == 1
    async with engine.connect() as conn:
        raw = (await conn.execute(text(
            "SELECT p.display_name, p.phone, p.key_id, i.address FROM participant p"
            " JOIN channelidentity i ON i.participant_id = p.id"))).one()
    assert raw[0].startswith(f"s1:{raw[2]}:") and raw[1].startswith("a1:")
    assert raw[3] == raw[1]  # the same number, the same sealed value: still a lookup
    async with session_scope(engine) as session:
        identity = await find_identity(session, channel="sms", address="+447700900888")
        assert identity is not None and identity.participant_id == 7
        p = await session.get(Participant, 7)
        assert p is not None and (p.display_name, p.phone) == ("Legacy Lou", "+447700900888")
    reads: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: reads.append(statement))
    async with session_scope(engine) as session:  # the sender of a message: one read
        identity, person = await find_linked(session, channel="sms", address="+447700900888")
        assert identity is not None and person is not None and len(reads) == 1
        assert (person.id, person.display_name) == (7, "Legacy Lou")
        assert await find_linked(session, channel="sms", address="+447700900999") == \
            (None, None)
