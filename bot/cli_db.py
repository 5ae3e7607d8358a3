"""Backup commands: `throughcare db backup PATH` and `throughcare db restore PATH`.

They join the `db` group of bot.cli when it registers its sub-apps; the work is in
storage.backup. A backup never holds DATA_KEY, BLIND_KEY or local mode's `.keys` file, so
each command ends with a line (on stderr) saying which keys the database needs.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.cli import db_app, fail, settings_or_exit
from bot.config import Settings, key_file
from bot.runtime import open_engine, prepare_database
from storage import crypto
from storage.backup import (
    Summary,
    backup_sqlite,
    dump_postgres,
    kind_of,
    pg_tables,
    restore_postgres,
    restore_sqlite,
    sqlite_file,
    sqlite_summary,
)
from storage.erasure import Erased, erase_again, erased_people
from storage.errors import BackupError


def _settings() -> Settings:
    """Read settings without setting up keys.

    Loading keys in local mode makes a new key file beside a database that is not there
    yet, and a restore into a new place must not get keys that cannot open the backup.
    """
    try:
        return Settings()
    except ValidationError:
        return settings_or_exit()  # the same error, said in one line, exit 2


def _place(settings: Settings) -> str:
    """Name the configured database without its password."""
    path = sqlite_file(settings.database_url)
    if path is not None:
        return f"SQLite file {path}"
    url = make_url(settings.database_url.replace("postgres://", "postgresql://", 1))
    return f"PostgreSQL database {url.database} at {url.host or 'localhost'}:{url.port or 5432}"


def _keys_note(settings: Settings, *, restored: bool) -> str:
    """Say which keys read this database: they are never in the backup."""
    if settings.data_key and settings.blind_key:
        return ("Keys are not in backups: it reads only with the DATA_KEY and BLIND_KEY it was "
                "written with (an older DATA_KEY too, if rotated since).")
    path = key_file(settings)
    if path is None:
        return "No DATA_KEY or BLIND_KEY set: this database uses the public development keys."
    if not path.exists():
        if restored:
            return (f"No key file at {path}: copy the keys this backup was written with there "
                    "before starting the service, or names and messages will not open.")
        return f"No key file at {path}: this database uses the public development keys."
    if restored:
        return f"It reads with the keys in {path}: they must be the ones it was written with."
    return f"Keys are not in backups: keep a copy of {path} safe, apart from them."


def _confirm(question: str, yes: bool) -> None:
    """Go on with --yes, or when a person at a terminal says yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail("restore replaces the whole database: add --yes to go ahead", 2)
    if not typer.confirm(question, default=False):
        fail("Nothing changed.")


def _erased_before(settings: Settings) -> list[Erased]:
    """Return who was erased in the database about to be replaced (none if it is new); if
    it cannot be read, say so: then nobody can be erased again for you."""
    if (path := sqlite_file(settings.database_url)) is not None and not path.exists():
        return []

    async def go() -> list[Erased]:
        engine = open_engine(settings)
        try:
            return await erased_people(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0][:120]
        typer.echo(f"Could not read who was erased in the database being replaced ({reason}):"
                   " erase again by hand anyone erased since the backup.", err=True)
        return []


def _upgrade(erased: list[Erased]) -> tuple[dict[str, int], int]:
    """Migrate the restored database to the newest schema (a backup may be older), then erase
    again those erased since the backup; return how many participant keys are wrapped by
    master keys that DATA_KEY does not hold (then nobody is erased), and how many it erased."""
    settings = settings_or_exit()  # the database exists now: local mode makes no key file
    held = {crypto.Keyring.master_id(key) for key in crypto.current().masters}

    async def go() -> tuple[dict[str, int], int]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            census = await crypto.key_census(engine)
            unopened = {mid: n for mid, n in census.items() if mid not in held}
            if unopened or not erased:
                return unopened, 0
            return unopened, await erase_again(engine, erased, now=datetime.now(UTC))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
) -> None:
    """Write a consistent backup of the database to PATH, while the service runs."""
    settings = _settings()
    source = sqlite_file(settings.database_url)
    keys = key_file(settings)
    if keys is not None and path.resolve() == keys.resolve():
        fail(f"{path} is the key file: give the backup another name", 2)
    try:
        if source is not None:
            summary = backup_sqlite(source, path, force=force)
        else:
            summary = dump_postgres(settings.database_url, path, force=force)
    except (BackupError, OSError) as exc:
        fail(str(exc))
        raise
    typer.echo(f"Backed up {_place(settings)} to {path}: {summary.line()}.")
    typer.echo(_keys_note(settings, restored=False), err=True)


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A file `throughcare db backup` wrote.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the database without asking.")]
    = False,
) -> None:
    """Replace the database with a backup, then upgrade its schema (stop the service first)."""
    settings = _settings()
    target = sqlite_file(settings.database_url)
    want = "sqlite" if target is not None else "postgresql"
    if not path.is_file():
        fail(f"no backup at {path}", 2)
    if kind_of(path) != want:
        fail(f"{path} is not a {'SQLite' if target else 'PostgreSQL'} backup, and "
             f"DATABASE_URL is {_place(settings)}", 2)
    try:
        summary: Summary
        if target is not None:
            sqlite_summary(path)
            _confirm(f"Replace everything in {_place(settings)} with {path}?", yes)
            erased = _erased_before(settings)
            summary = restore_sqlite(path, target)
        else:
            pg_tables(path)
            _confirm(f"Replace everything in {_place(settings)} with {path}?", yes)
            erased = _erased_before(settings)
            summary = restore_postgres(settings.database_url, path)
    except (BackupError, OSError) as exc:
        fail(str(exc))
        raise
    unopened, again = _upgrade(erased)
    typer.echo(f"Restored {path} into {_place(settings)}: {summary.line()}; "
               "the schema is up to date.")
    if again:
        typer.echo(f"Erased again {again} people who had been erased since this backup.")
    typer.echo(_keys_note(settings, restored=True), err=True)
    if unopened:
        masters = ", ".join(sorted(unopened))
        ids = ", ".join(str(e.participant_id) for e in erased)
        fail(f"The keys configured do not open it: {sum(unopened.values())} participant keys "
             f"are wrapped by master key {masters}, which DATA_KEY does not hold. Put the keys "
             "it was written with in place before starting the service."
             + (f" Nobody was erased again: erase participants {ids} again (they were erased "
                "in the database this replaced)." if erased else ""))
