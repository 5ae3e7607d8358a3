"""A Champion sees only their own prison's people, over real HTTP to the served app: another
prison's participant, card and PDF are not found (404), and the CSV leaves them out.

No browser is needed: this is what any HTTP client gets, whatever the page shows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from storage.db import session_scope
from storage.models import LinkCode
from storage.participants import enrol
from tests.auxil.web import read_page
from tests.web.browser.conftest import Live
from tests.web.conftest import make_staff, sign_in


async def signed_in(live: Live, prison: str, email: str) -> httpx.AsyncClient:
    """Return an HTTP client signed in, through the form, as a Champion at `prison`."""
    user, password = await make_staff(live.engine, role="champion", prison=prison,
                                      email=email, now=live.clock.now)
    client = httpx.AsyncClient(base_url=live.url)
    response = await sign_in(client, user.email, password)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
async def clients(live: Live) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Return Champions at HMP Test (where Sam is) and at HMP Elsewhere, signed in."""
    own = await signed_in(live, "HMP Test", "own@example.org")
    other = await signed_in(live, "HMP Elsewhere", "other@example.org")
    yield own, other
    await own.aclose()
    await other.aclose()


async def codes_issued(engine: AsyncEngine) -> int:
    async with session_scope(engine) as session:
        return (await session.exec(select(func.count()).select_from(LinkCode))).one()


async def test_another_prisons_participant_card_and_pdf_are_not_found(
        live: Live, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    async with session_scope(live.engine) as session:
        sam, _ = await enrol(session, prison_name="HMP Test", display_name="Sam",
                             release_date=date(2026, 12, 10), release_postcode="ST3 2QH",
                             now=live.clock.now)
    base = f"/staff/participants/{sam.id}"
    own, other = clients
    for path in (base, f"{base}/card"):
        assert (await own.get(path)).status_code == 200, path  # the URLs are right
        refused = await other.get(path)
        assert refused.status_code == 404, path
        assert "Sam" not in refused.text
    assert (await other.get(f"{base}/card.pdf")).status_code == 404
    before = await codes_issued(live.engine)
    token = read_page((await other.get("/staff/")).text).csrf
    for path in (f"{base}/card", f"{base}/card.pdf", f"{base}/code"):  # would issue a code
        refused = await other.post(path, data={"csrf_token": token})
        assert refused.status_code == 404, path
        assert not refused.headers["content-type"].startswith("application/pdf")
    assert await codes_issued(live.engine) == before

    theirs = await other.get("/staff/reports.csv")
    assert theirs.status_code == 200
    rows = list(csv.DictReader(io.StringIO(theirs.text)))
    assert rows == []  # Sam is not in another prison's CSV
    ours = list(csv.DictReader(io.StringIO((await own.get("/staff/reports.csv")).text)))
    assert [(r["Participant"], r["First name"]) for r in ours] == [(str(sam.id), "Sam")]
