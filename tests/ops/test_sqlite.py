"""`throughcare db backup` and `db restore` on SQLite: online, consistent, keys kept apart."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import load_settings
from storage import crypto
from storage.db import make_engine, session_scope
from storage.erasure import erase_participant
from storage.migrate import alembic_config
from storage.participants import enrol
from tests.auxil.builders import NOW
from tests.ops.conftest import add_person, people, throughcare, throughcare_off_loop

PHONE = "+447700900123"


@dataclass
class Live:
    """The service's database: its file, URL and an engine on it."""

    path: Path
    url: str
    engine: AsyncEngine


def point_at(monkeypatch: pytest.MonkeyPatch, path: Path) -> str:
    """Point the settings at a SQLite file in local mode, with no keys in the environment."""
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.delenv("DATA_KEY", raising=False)
    monkeypatch.delenv("BLIND_KEY", raising=False)
    return url


@pytest.fixture
async def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               sqlite_template: Path) -> AsyncIterator[Live]:
    """A new database as local mode makes one: keys generated beside it, at the newest schema
    (a copy of the suite's template; a test below runs the migrations themselves)."""
    path = tmp_path / "live" / "throughcare.db"
    url = point_at(monkeypatch, path)
    load_settings(_env_file=None)  # generates and installs live/throughcare.keys
    assert path.with_suffix(".keys").exists()
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(url)
    yield Live(path, url, engine)
    await engine.dispose()


async def test_a_backup_taken_while_the_service_writes_restores_with_its_keys(
        live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await add_person(live.engine, "Marnie", PHONE)
    assert live.path.with_name("throughcare.db-wal").stat().st_size > 0  # Marnie: in -wal only
    writer = make_engine(live.url)  # the service, writing all along on its own connection
    written: list[int] = []
    three, stop = asyncio.Event(), asyncio.Event()

    async def service() -> None:
        while not stop.is_set():
            await add_person(writer, f"Writer {len(written) + 1}")
            written.append(len(written) + 1)
            if len(written) == 3:
                three.set()

    task = asyncio.create_task(service())
    await three.wait()
    backup = tmp_path / "backups" / "monday.db"
    result = await asyncio.to_thread(throughcare, "db", "backup", str(backup))
    stop.set()
    await task  # raises if the service met "database is locked"
    await writer.dispose()
    assert result.exit_code == 0, result.output
    assert f"to {backup}: " in result.stdout and " tables, " in result.stdout
    assert "live/throughcare.keys" in result.stderr  # keep the keys: they are not in it
    assert not backup.with_name("monday.db.tmp").exists()
    raw = backup.read_bytes()
    assert b"Marnie" not in raw and PHONE.encode() not in raw and b"Writer" not in raw

    fresh = tmp_path / "restored" / "throughcare.db"
    fresh.parent.mkdir()
    shutil.copyfile(live.path.with_suffix(".keys"), fresh.with_suffix(".keys"))  # kept apart
    point_at(monkeypatch, fresh)
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert "the schema is up to date" in result.stdout
    load_settings(_env_file=None)  # as the service would start on it: the copied keys
    restored = make_engine(f"sqlite:///{fresh}")
    try:
        found = await people(restored)
    finally:
        await restored.dispose()
    # One snapshot: Marnie and the first k writers, each whole (sealed with a key it holds).
    k = len(found) - 1
    assert found == [("Marnie", PHONE)] + [(f"Writer {n}", None) for n in range(1, k + 1)]
    assert 3 <= k <= len(written)


async def test_a_backup_does_not_wait_for_a_writer_nor_keep_what_it_has_not_committed(
        live: Live, tmp_path: Path) -> None:
    await add_person(live.engine, "Marnie", PHONE)
    backup = tmp_path / "b.db"
    writer = make_engine(live.url)
    try:
        async with session_scope(writer) as session:  # holds SQLite's write lock until the end
            await enrol(session, prison_name="HMP Test", display_name="Una",
                        release_date=NOW.date(), release_postcode=None, now=NOW)
            await session.flush()
            # busy_timeout is 10 s: a backup that needed the write lock would fail here.
            result = await asyncio.wait_for(
                asyncio.to_thread(throughcare, "db", "backup", str(backup)), 8)
        assert result.exit_code == 0, result.output
    finally:
        await writer.dispose()
    copy = make_engine(f"sqlite:///{backup}")
    try:
        assert [name for name, _ in await people(copy)] == ["Marnie"]
    finally:
        await copy.dispose()
    assert [name for name, _ in await people(live.engine)] == ["Marnie", "Una"]


async def test_a_backup_restored_without_its_keys_cannot_be_read(
        live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await add_person(live.engine, "Marnie", PHONE)
    backup = tmp_path / "b.db"
    assert throughcare("db", "backup", str(backup)).exit_code == 0
    elsewhere = tmp_path / "elsewhere" / "throughcare.db"
    point_at(monkeypatch, elsewhere)
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 1, result.output  # restored, but it says it cannot be read
    assert f"No key file at {elsewhere.with_suffix('.keys')}" in result.stderr
    assert "The keys configured do not open it: 1 participant keys" in result.stderr
    assert not elsewhere.with_suffix(".keys").exists()  # no new keys made for it either
    load_settings(_env_file=None)  # no key file beside an existing database: other keys
    copy = make_engine(f"sqlite:///{elsewhere}")
    try:
        with pytest.raises(crypto.SealError):
            await people(copy)
    finally:
        await copy.dispose()


async def test_backup_never_overwrites_by_accident_and_never_makes_a_database(
        live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backup = tmp_path / "b.db"
    backup.write_bytes(b"last week's backup")
    result = throughcare("db", "backup", str(backup))
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert backup.read_bytes() == b"last week's backup"
    assert throughcare("db", "backup", str(backup), "--force").exit_code == 0
    assert backup.read_bytes().startswith(b"SQLite format 3\x00")
    assert backup.stat().st_mode & 0o077 == 0  # a copy of the data: its owner's only
    for itself in (live.path, live.path.with_suffix(".keys")):
        result = throughcare("db", "backup", str(itself), "--force")
        assert result.exit_code != 0 and "give the backup another name" in result.stderr

    missing = tmp_path / "missing" / "throughcare.db"
    point_at(monkeypatch, missing)
    result = throughcare("db", "backup", str(tmp_path / "c.db"))
    assert result.exit_code == 1 and f"no database at {missing}" in result.stderr
    assert not missing.exists() and not missing.with_suffix(".keys").exists()
    assert not (tmp_path / "c.db").exists() and not (tmp_path / "c.db.tmp").exists()


async def test_restore_asks_first_and_refuses_a_database_in_use(
        live: Live, tmp_path: Path) -> None:
    await add_person(live.engine, "Marnie", PHONE)
    backup = tmp_path / "b.db"
    assert throughcare("db", "backup", str(backup)).exit_code == 0
    await add_person(live.engine, "Later")
    result = throughcare("db", "restore", str(backup))  # not a terminal: no one to ask
    assert result.exit_code == 2 and "add --yes" in result.stderr
    async with live.engine.connect() as conn:  # the service is running
        await conn.execute(text("SELECT 1"))
        result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 1 and "is in use: stop the service" in result.stderr
    assert [name for name, _ in await people(live.engine)] == ["Marnie", "Later"]
    await live.engine.dispose()  # the service stopped: now it goes
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert [name for name, _ in await people(live.engine)] == ["Marnie"]
    assert not live.path.with_name("throughcare.db-wal").exists() or \
        live.path.with_name("throughcare.db-wal").stat().st_size == 0


async def test_restoring_a_backup_from_an_older_version_upgrades_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "old" / "throughcare.db"
    old.parent.mkdir()
    point_at(monkeypatch, old)
    engine = make_engine(f"sqlite:///{old}")

    def to_0008(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), "0008")

    async with engine.begin() as conn:
        await conn.run_sync(to_0008)
    await engine.dispose()
    backup = tmp_path / "old.db"
    assert throughcare("db", "backup", str(backup)).exit_code == 0
    new = tmp_path / "new" / "throughcare.db"
    point_at(monkeypatch, new)
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{new}")
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).one()
            assert version[0] != "0008"
            await conn.execute(text("SELECT count(*) FROM participantkey"))  # from 0009
    finally:
        await engine.dispose()


def test_restore_refuses_what_is_not_a_sqlite_backup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(monkeypatch, tmp_path / "throughcare.db")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    result = throughcare("db", "restore", str(notes), "--yes")
    assert result.exit_code == 2 and "is not a SQLite backup" in result.stderr
    result = throughcare("db", "restore", str(tmp_path / "nothing.db"), "--yes")
    assert result.exit_code == 2 and "no backup at" in result.stderr
    assert not (tmp_path / "throughcare.db").exists()


async def test_restoring_an_older_backup_erases_again_whoever_was_erased_since(
        live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = await add_person(live.engine, "Ann", PHONE)
    await add_person(live.engine, "Bea")
    backup = tmp_path / "monday.db"
    assert throughcare("db", "backup", str(backup)).exit_code == 0
    async with session_scope(live.engine) as session:  # Tuesday: Ann sends DELETE
        await erase_participant(session, participant_id=ann, now=NOW)
    await live.engine.dispose()
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert "Erased again 1 people who had been erased since this backup." in result.stdout
    assert await people(live.engine) == [("", None), ("Bea", None)]  # Ann stays erased
    async with live.engine.connect() as conn:
        keys = (await conn.execute(text("SELECT count(*) FROM participantkey"))).scalar_one()
        action = (await conn.execute(text(
            "SELECT actor, action FROM auditevent WHERE participant_id = :p ORDER BY id DESC"),
            {"p": ann})).first()
    assert keys == 1 and tuple(action or ()) == ("cli", "erase_again_after_restore")
    await live.engine.dispose()

    # The same backup restored over that again: the erasure holds through any number of them.
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0 and "Erased again 1 people" in result.stdout
    assert await people(live.engine) == [("", None), ("Bea", None)]
    await live.engine.dispose()


async def test_a_restore_without_its_keys_names_who_to_erase_again(
        live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = await add_person(live.engine, "Ann", PHONE)
    backup = tmp_path / "monday.db"
    assert throughcare("db", "backup", str(backup)).exit_code == 0
    async with session_scope(live.engine) as session:
        await erase_participant(session, participant_id=ann, now=NOW)
    await live.engine.dispose()
    live.path.with_suffix(".keys").unlink()  # the keys were not put back
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 1, result.output
    assert f"Nobody was erased again: erase participants {ann} again" in result.stderr


async def test_a_restore_over_an_unreadable_database_says_it_cannot_erase_again_for_you(
        live: Live, tmp_path: Path) -> None:
    await add_person(live.engine, "Ann", PHONE)
    backup = tmp_path / "monday.db"
    assert throughcare("db", "backup", str(backup)).exit_code == 0
    await live.engine.dispose()
    live.path.unlink()
    for side in ("throughcare.db-wal", "throughcare.db-shm"):
        live.path.with_name(side).unlink(missing_ok=True)
    damaged = sqlite3.connect(live.path)  # a SQLite file whose tables are not ours any more
    damaged.execute("CREATE TABLE participant (id INTEGER, name TEXT)")
    damaged.close()
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert "Could not read who was erased in the database being replaced" in result.stderr
    assert "erase again by hand anyone erased since the backup" in result.stderr
    assert "Traceback" not in result.output
    assert await people(live.engine) == [("Ann", PHONE)]
    await live.engine.dispose()
