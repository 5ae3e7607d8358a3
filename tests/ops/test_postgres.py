"""`throughcare db backup` and `db restore` on PostgreSQL: pg_dump and pg_restore, no password
on any command line."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import load_settings
from storage import crypto
from storage.db import create_all, make_engine, session_scope
from storage.erasure import erase_participant
from tests.auxil.builders import NOW
from tests.conftest import PG_URL, _stamp_head, pg_admin, requires_postgres
from tests.ops.conftest import add_person, people, throughcare, throughcare_off_loop

PHONE = "+447700900123"
FAKE_PG_DUMP = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD/argv"
/usr/bin/env > "$RECORD/env"
echo "pg_dump: error: connection failed for care with hunter2" >&2
exit 1
"""


@pytest.fixture
async def scratch(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A database of this test's own beside the one named, the settings pointing at it."""
    name = f"{make_url(PG_URL).database}_backup_{os.getpid()}_{secrets.token_hex(3)}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.setenv("DATA_KEY", crypto.new_secret())
    monkeypatch.setenv("BLIND_KEY", crypto.new_secret())
    load_settings(_env_file=None)  # installs those keys, as the service would
    yield url
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def schema_on(url: str) -> AsyncEngine:
    """Return an engine on the scratch database with the newest schema in it."""
    engine = make_engine(url)
    await create_all(engine)
    async with engine.begin() as conn:
        await conn.run_sync(_stamp_head)
    return engine


async def _names(url: str) -> list[tuple[str, str | None]]:
    engine = make_engine(url)  # a new engine: the restore replaced every table
    try:
        return await people(engine)
    finally:
        await engine.dispose()


@requires_postgres()
async def test_a_dump_restores_over_changed_data_and_into_an_empty_database(
        scratch: str, tmp_path: Path) -> None:
    engine = await schema_on(scratch)
    await add_person(engine, "Priya", PHONE)
    backup = tmp_path / "monday.dump"
    result = await throughcare_off_loop("db", "backup", str(backup))
    assert result.exit_code == 0, result.output
    assert f"to {backup}: " in result.stdout and " tables." in result.stdout
    assert "DATA_KEY and BLIND_KEY" in result.stderr
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert b"Priya" not in backup.read_bytes() and PHONE.encode() not in backup.read_bytes()

    async with engine.begin() as conn:  # the data changes after the backup
        await conn.execute(text("TRUNCATE participant CASCADE"))
    await add_person(engine, "Later Lee")
    await engine.dispose()
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert await _names(scratch) == [("Priya", PHONE)]

    await _admin_on(scratch, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert await _names(scratch) == [("Priya", PHONE)]
    crypto.install(crypto.keyring_from(crypto.new_secret(), crypto.new_secret()))
    with pytest.raises(crypto.SealError):  # the dump without its keys
        await _names(scratch)


async def _admin_on(url: str, sql: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in sql.split(";"):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def test_the_password_reaches_pg_dump_in_its_environment_never_its_arguments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "pg_dump").write_text(FAKE_PG_DUMP)
    (tools / "pg_dump").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.setenv("RECORD", str(tmp_path))
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.setenv("DATABASE_URL",
                       "postgresql://care:hunter2@127.0.0.1:5432/throughcare?sslmode=require")
    result = throughcare("db", "backup", str(tmp_path / "b.dump"))
    assert result.exit_code == 1
    assert "pg_dump failed: connection failed for care with ***" in result.stderr
    assert "hunter2" not in result.output
    argv = (tmp_path / "argv").read_text()
    assert "--format=custom" in argv and "hunter2" not in argv and "care" not in argv
    env = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines()
               if "=" in line)
    assert (env["PGPASSWORD"], env["PGUSER"], env["PGDATABASE"], env["PGSSLMODE"]) == (
        "hunter2", "care", "throughcare", "require")
    assert not (tmp_path / "b.dump").exists() and not (tmp_path / "b.dump.tmp").exists()


def test_without_the_postgresql_client_tools_it_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.setenv("DATABASE_URL", "postgresql://care@127.0.0.1:5432/throughcare")
    result = throughcare("db", "backup", str(tmp_path / "b.dump"))
    assert result.exit_code == 1 and "pg_dump is not installed" in result.stderr
    dump = tmp_path / "old.dump"
    dump.write_bytes(b"PGDMP not really")
    result = throughcare("db", "restore", str(dump), "--yes")
    assert result.exit_code == 1 and "pg_restore is not installed" in result.stderr


def test_restore_on_postgresql_refuses_a_sqlite_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.setenv("DATABASE_URL", "postgresql://care@127.0.0.1:5432/throughcare")
    lite = tmp_path / "b.db"
    lite.write_bytes(b"SQLite format 3\x00" + bytes(100))
    result = throughcare("db", "restore", str(lite), "--yes")
    assert result.exit_code == 2 and "is not a PostgreSQL backup" in result.stderr


@requires_postgres()
async def test_restoring_an_older_dump_erases_again_whoever_was_erased_since(
        scratch: str, tmp_path: Path) -> None:
    engine = await schema_on(scratch)
    priya = await add_person(engine, "Priya", PHONE)
    await add_person(engine, "Sam")
    backup = tmp_path / "monday.dump"
    assert (await throughcare_off_loop("db", "backup", str(backup))).exit_code == 0
    async with session_scope(engine) as session:  # Tuesday: Priya sends DELETE
        await erase_participant(session, participant_id=priya, now=NOW)
    await engine.dispose()
    result = await throughcare_off_loop("db", "restore", str(backup), "--yes")
    assert result.exit_code == 0, result.output
    assert "Erased again 1 people who had been erased since this backup." in result.stdout
    assert await _names(scratch) == [("", None), ("Sam", None)]
