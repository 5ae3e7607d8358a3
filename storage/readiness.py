"""Is the database ready to serve: does it answer, and is its schema at the newest migration?"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.migrate import alembic_config

logger = logging.getLogger(__name__)
TIMEOUT = 5.0  # seconds a readiness check may take before the database counts as unreachable


class Schema(StrEnum):
    """Where the database's schema stands against the migration scripts."""

    CURRENT = "current"  # at the newest revision this code knows
    BEHIND = "behind"  # an older revision: run `throughcare db upgrade`
    AHEAD = "ahead"  # a revision this code does not know (a newer release migrated it)
    MISSING = "missing"  # no alembic_version: built some other way, or empty
    UNKNOWN = "unknown"  # the database did not answer, so nobody can say


@dataclass(frozen=True)
class Readiness:
    """What a readiness check found."""

    database: bool
    schema: Schema

    @property
    def ready(self) -> bool:
        """Say whether this process can serve: the database answers at the newest schema."""
        return self.database and self.schema == Schema.CURRENT


@cache
def _scripts() -> ScriptDirectory:
    """Read the migration scripts once: they do not change while the process runs."""
    return ScriptDirectory.from_config(alembic_config())


def head_revisions() -> frozenset[str]:
    """Return the newest revision(s) the migration scripts define."""
    return frozenset(_scripts().get_heads())


def _schema_of(conn: Connection) -> Schema:
    found = frozenset(MigrationContext.configure(conn).get_current_heads())
    if not found:
        return Schema.MISSING
    if found == head_revisions():
        return Schema.CURRENT
    try:
        known = all(_scripts().get_revision(rev) is not None for rev in found)
    except CommandError:  # a revision id the scripts have never heard of
        known = False
    return Schema.BEHIND if known else Schema.AHEAD


async def _check(engine: AsyncEngine) -> Readiness:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            return Readiness(database=True, schema=await conn.run_sync(_schema_of))
    except (SQLAlchemyError, OSError) as exc:
        # The type only: a driver's message can carry the URL, with its password.
        logger.error("readiness: database check failed (%s)", type(exc).__name__)
        return Readiness(database=False, schema=Schema.UNKNOWN)


async def readiness(engine: AsyncEngine, *, within: float = TIMEOUT) -> Readiness:
    """Check that the database answers SELECT 1 and that its schema is at the newest revision,
    within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            return await _check(engine)
    except TimeoutError:
        logger.error("readiness: database did not answer within %s s", within)
        return Readiness(database=False, schema=Schema.UNKNOWN)
