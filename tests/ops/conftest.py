"""Fixtures for backup and restore: people on a database of their own, keys put back after."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from bot.cli import _register_subapps, app
from storage import crypto
from storage.db import session_scope
from storage.models import Participant
from storage.participants import enrol
from tests.auxil.builders import NOW


@pytest.fixture(autouse=True)
def _restore_keys() -> Iterator[None]:
    """Put the process's keys back as they were (settings install keys process-wide)."""
    before = crypto._Process.keyring
    yield
    crypto.install(before or crypto.development_keyring())
    fresh_process()


def fresh_process() -> None:
    """Forget every opened key, as a process just started would have none."""
    crypto._Process.opened.clear()
    crypto._Process.wrapped.clear()
    crypto._Process.gone.clear()
    crypto._Process.wrapped_until = 0.0


def throughcare(*args: str) -> Result:
    """Run a `throughcare` command in this process (settings from the environment)."""
    _register_subapps()
    return CliRunner().invoke(app, list(args))


async def throughcare_off_loop(*args: str) -> Result:
    """Run a command in a thread: commands that migrate run an event loop of their own."""
    return await asyncio.to_thread(throughcare, *args)


async def add_person(engine: AsyncEngine, name: str, phone: str | None = None) -> int:
    """Enrol a person (sealed with their own data key); return their id."""
    async with session_scope(engine) as session:
        p, _code = await enrol(session, prison_name="HMP Test", display_name=name,
                               release_date=date(2026, 12, 1), release_postcode=None,
                               phone=phone, now=NOW)
        assert p.id is not None
        return p.id


async def people(engine: AsyncEngine) -> list[tuple[str, str | None]]:
    """Return every (name, phone), opened with the keys installed now."""
    fresh_process()
    async with session_scope(engine) as session:
        rows = await session.exec(select(Participant.display_name, Participant.phone)
                                  .order_by(col(Participant.id)))
        return [(name, phone) for name, phone in rows.all()]
