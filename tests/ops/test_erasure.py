"""What a backup means for an erased person: the README's promises, held to the code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import crypto
from storage.backup import backup_sqlite
from storage.db import make_engine, session_scope
from storage.erasure import erase_participant
from tests.auxil.builders import NOW
from tests.ops.conftest import add_person, people

PHONE = "+447700900123"


def _ring(*masters: str, blind: str) -> crypto.Keyring:
    return crypto.keyring_from(",".join(masters), blind)


async def test_an_old_backup_opens_an_erased_person_until_its_master_key_is_destroyed(
        tmp_path: Path, sqlite_template: Path) -> None:
    live = tmp_path / "live.db"
    shutil.copyfile(sqlite_template, live)
    old, blind = crypto.new_secret(), crypto.new_secret()
    crypto.install(_ring(old, blind=blind))
    engine = make_engine(f"sqlite:///{live}")
    backup = make_engine(f"sqlite:///{tmp_path / 'before.db'}")
    try:
        ann = await add_person(engine, "Ann", PHONE)
        await add_person(engine, "Bea")
        backup_sqlite(live, tmp_path / "before.db")
        async with session_scope(engine) as session:
            await erase_participant(session, participant_id=ann, now=NOW)
        assert await people(engine) == [("", None), ("Bea", None)]
        # The backup holds Ann's wrapped data key: with the master key of its day she is back.
        assert await people(backup) == [("Ann", PHONE), ("Bea", None)]

        new = crypto.new_secret()
        crypto.install(_ring(new, old, blind=blind))
        assert await crypto.rotate(engine) == 1  # Bea's key; Ann's is gone from the live one
        crypto.install(_ring(new, blind=blind))  # the old master key destroyed
        assert await people(engine) == [("", None), ("Bea", None)]
        with pytest.raises(crypto.SealError, match="not configured"):
            await people(backup)  # nobody's data in it opens now, Ann's included

        # Addresses are sealed under BLIND_KEY, which never changes: only deleting old
        # backups takes Ann's number out of them (hence a short, fixed backup retention).
        async with backup.connect() as conn:
            sealed = (await conn.execute(text("SELECT phone FROM participant WHERE id = :id"),
                                         {"id": ann})).scalar_one()
        assert sealed.startswith(crypto.ADDRESS) and crypto.open_address(sealed) == PHONE
    finally:
        await engine.dispose()
        await backup.dispose()
