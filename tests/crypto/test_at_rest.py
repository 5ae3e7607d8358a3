"""What a person wrote is sealed in the database files, and DELETE makes every copy unreadable.

The files themselves are read: the SQLite file and its -wal; on PostgreSQL a pg_dump and,
where the server's data directory is readable, the table files after a CHECKPOINT.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, select

from storage import crypto
from storage.db import session_scope
from storage.models import (
    CheckIn,
    InboundMessage,
    KeyContact,
    Participant,
    ParticipantKey,
    Prison,
    ToolEntry,
)
from tests.auxil.builders import PHONE, TELEGRAM_ID
from tests.conftest import USE_PG
from tests.handlers.conftest import MakePerson
from tests.handlers.test_mydata import NAME, PRIVATE, _fill_a_life

CONTROL = "HMP Findable Marker"  # a prison name: not personal, so kept in the clear


def _sqlite_files(db_url: str) -> bytes:
    path = Path(make_url(db_url).database or "")
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _pg_dump(db_url: str) -> bytes:
    if not shutil.which("pg_dump"):
        return b""
    url = make_url(db_url)
    return subprocess.run(
        ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", "-d", url.database or ""],
        capture_output=True, check=True, env={**os.environ, "PGPASSWORD": url.password or ""},
    ).stdout


def _readable_files(files: list[Path]) -> bytes:
    return b"".join(f.read_bytes() for f in files if os.access(f, os.R_OK))


async def _raw_bytes(engine: AsyncEngine, db_url: str) -> bytes:
    """Return the bytes of the database as they sit on disk (and as a dump shows them)."""
    if not USE_PG:
        return _sqlite_files(db_url)
    return _pg_dump(db_url) + await _pg_table_files(engine)


async def _pg_table_files(engine: AsyncEngine) -> bytes:
    """Return the heap and TOAST files of every table, if this process may read them."""
    names = [t.name for t in SQLModel.metadata.sorted_tables]
    async with engine.connect() as conn:
        await conn.execute(text("CHECKPOINT"))
        base = (await conn.execute(text("SHOW data_directory"))).scalar()
        paths = (await conn.execute(text(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.relname = ANY(:n) "
            "UNION SELECT pg_relation_filepath(c.reltoastrelid) FROM pg_class c "
            "WHERE c.relname = ANY(:n) AND c.reltoastrelid <> 0"), {"n": names})).scalars()
        files = [Path(str(base)) / p for p in paths if p]
    return _readable_files(files)


async def _open_all(engine: AsyncEngine, sealed: list[str]) -> list[str | None]:
    """Open sealed values as a read of the database would (keys load on that engine)."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: [crypto.open_text(v, c.dialect) for v in sealed])


def _found(raw: bytes, needles: list[str]) -> list[str]:
    haystack = raw.lower()
    return [n for n in needles if n.lower().encode() in haystack]


async def test_files_hold_no_name_number_or_words_and_delete_ends_every_copy(
    engine: AsyncEngine, db_url: str, make_person: MakePerson,
) -> None:
    sms = await make_person("sms", name=NAME, goals=[PRIVATE[5], PRIVATE[6]])
    tg = await _fill_a_life(engine, sms)
    async with session_scope(engine) as session:
        session.add(Prison(name=CONTROL))
        p = await session.get(Participant, sms.participant_id)
        assert p is not None and p.display_name == NAME and p.phone == PHONE  # plaintext to us
        note = (await session.exec(select(CheckIn.note))).all()
        assert "Argued with Darren at the hostel" in note
        contact = (await session.exec(select(KeyContact))).one()
        assert (contact.name, contact.phone) == ("Jo Bloggs", "07700 900777")
        key_id = p.key_id
    needles = [NAME, PHONE, PHONE.removeprefix("+44"), TELEGRAM_ID, *PRIVATE]

    raw = await _raw_bytes(engine, db_url)
    assert _found(raw, [CONTROL]) == [CONTROL], "the reader sees what is stored in the clear"
    if USE_PG and (files := await _pg_table_files(engine)):
        assert _found(files, [CONTROL]) == [CONTROL], "so do the table files"
    assert _found(raw, needles) == []

    async with engine.connect() as conn:  # their messages as they sit in the database
        sealed = list((await conn.execute(text(
            "SELECT body FROM inboundmessage WHERE body LIKE :k"), {"k": f"s1:{key_id}:%"}
        )).scalars())
    assert PRIVATE[0] in await _open_all(engine, sealed)

    await tg.say("DELETE")
    assert "erased" in (await tg.choose("DELETE_YES"))[0]

    async with session_scope(engine) as session:
        assert await session.get(ParticipantKey, key_id) is None
        p = await session.get(Participant, sms.participant_id)
        assert p is not None and p.key_id is None
        entries = (await session.exec(select(ToolEntry).where(
            col(ToolEntry.participant_id) == sms.participant_id))).all()
        assert all(isinstance(v, int | float) for e in entries for v in (e.data or {}).values())
    # Any copy of those values (the -wal, a dead tuple, a backup) can no longer be opened.
    assert await _open_all(engine, sealed) == [None] * len(sealed)
    assert _found(await _raw_bytes(engine, db_url), needles) == []


async def test_a_new_participant_gets_a_key_of_their_own(
    engine: AsyncEngine, make_person: MakePerson,
) -> None:
    one = await make_person("sms", name="Ann")
    two = await make_person("sms", name="Bea", address="+447700900555")
    async with engine.connect() as conn:
        rows = {int(i): str(n) for i, n in (await conn.execute(text(
            "SELECT id, display_name FROM participant ORDER BY id"))).all()}
        wrapped = (await conn.execute(text("SELECT wrapped FROM participantkey"))).scalars()
        assert len(set(wrapped)) == 2
    names = [rows[one.participant_id], rows[two.participant_id]]
    kids = [crypto.key_id_of(n) for n in names]
    assert all(kids) and kids[0] != kids[1]
    # 100 bytes of name: what a sealed value costs on disk.
    async with session_scope(engine) as session:
        p = await session.get(Participant, one.participant_id)
        assert p is not None
        p.display_name = "x" * 100
        session.add(p)
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT display_name FROM participant WHERE id = :i"),
                                      {"i": one.participant_id})).scalar()
    assert stored is not None and len(stored) == 3 + 16 + 1 + 171  # prefix, key id, nonce+tag


async def test_text_that_looks_sealed_is_sealed_too(engine: AsyncEngine,
                                                    make_person: MakePerson) -> None:
    person = await make_person("sms", name="Cal")
    forged = crypto.seal_service("not what they typed")
    await person.say(str(forged))
    async with session_scope(engine) as session:
        bodies = (await session.exec(select(InboundMessage.body).where(
            col(InboundMessage.participant_id) == person.participant_id))).all()
    assert str(forged) in bodies  # read back as they typed it, not opened
