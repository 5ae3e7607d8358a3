"""The enrolment form asks for a language; the texts the person gets follow it."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from storage.db import session_scope
from storage.models import Participant
from tests.auxil.enrolling import NEW, enrol_on_page, enrolment
from tests.auxil.web import submit
from tests.web.conftest import StaffLogin


async def _languages(engine: AsyncEngine) -> list[str]:
    async with session_scope(engine) as session:
        return [p.language for p in (await session.exec(select(Participant))).all()]


@pytest.mark.parametrize("language", ["en", "cy"])
async def test_the_language_chosen_at_enrolment_is_kept(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine,
        language: str) -> None:
    await staff_login(client)
    page = (await client.get(NEW)).text
    assert "Cymraeg" in page and 'name="language"' in page
    await enrol_on_page(client, language=language)
    assert await _languages(engine) == [language]


async def test_an_unknown_language_is_refused_next_to_the_field(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await staff_login(client)
    response = await submit(client, NEW, enrolment(language="fr", consent_version="x"))
    assert "Language must be English or Cymraeg" in response.text
    assert await _languages(engine) == []
