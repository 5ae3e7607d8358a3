"""No serious or critical axe-core findings on any staff page, in a real browser.

Serves the app on loopback with uvicorn and opens each page in Chromium (Debian's package)
through playwright-core, as each role, in its plain and its error states. Needs
`/usr/bin/chromium` and `npm ci` in tests/web/a11y; skipped, saying so, without them.
Page-builders: add your pages to VISITS.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.participants import enrol
from tests.web.conftest import NOW, make_staff

HERE = Path(__file__).with_name("a11y")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BLOCKING = ("serious", "critical")

# (name, role or None for signed out, path, button to press first or None)
VISITS: list[tuple[str, str | None, str, str | None]] = [
    ("sign in", None, "/staff/login", None),
    ("sign in, errors", None, "/staff/login", "Sign in"),
    ("not found", None, "/staff/no-such-page", None),
    ("champion home", "champion", "/staff/", None),
    ("coordinator home", "coordinator", "/staff/", None),
    ("admin home", "admin", "/staff/", None),
    ("change password", "champion", "/staff/password", None),
    ("champion reports", "champion", "/staff/reports", None),
    ("coordinator reports", "coordinator", "/staff/reports", None),
    ("change password, errors", "champion", "/staff/password", "Save password"),
    # Participant pages, of the person enrol_for_pages enrols first (id 1, at HMP Test).
    ("caseload", "champion", "/staff/participants", None),
    ("enrol", "champion", "/staff/participants/new", None),
    ("enrol, errors", "champion", "/staff/participants/new", "Enrol"),
    ("plan", "champion", "/staff/participants/1", None),
    ("plan, errors", "champion", "/staff/participants/1", "Add goal"),
    ("choose meetings", "champion", "/staff/participants/1/meetings", None),
    ("add appointment", "champion", "/staff/participants/1/appointments/new", None),
    ("add appointment, errors", "champion", "/staff/participants/1/appointments/new",
     "Add appointment"),
    ("add key contact", "champion", "/staff/participants/1/contacts/new", None),
    ("add key contact, errors", "champion", "/staff/participants/1/contacts/new",
     "Add contact"),
    ("change release date", "champion", "/staff/participants/1/release-date", None),
    ("mark as released", "champion", "/staff/participants/1/released", None),
    ("new link code", "champion", "/staff/participants/1", "Issue a new code"),
    ("discreet texts", "champion", "/staff/participants/1/discreet", None),
    # The coordinators' console.
    ("meetings", "admin", "/staff/meetings", None),
    ("add a meeting", "admin", "/staff/meetings/new", None),
    ("add a meeting, errors", "admin", "/staff/meetings/new", "Save meeting"),
    ("a meeting", "admin", "/staff/meetings/1", None),
    ("cancel one date", "admin", "/staff/meetings/1/cancel-date", None),
    ("feeds", "coordinator", "/staff/feeds", None),
    ("meeting reports", "coordinator", "/staff/reports/meetings", None),
    ("broadcasts", "coordinator", "/staff/broadcasts", None),
    ("new broadcast", "coordinator", "/staff/broadcasts/new", None),
    ("regions", "admin", "/staff/regions", None),
    ("simulator", "champion", "/staff/simulator", None),
    ("link telegram", "coordinator", "/staff/telegram", None),
]

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and (HERE / "node_modules" / "axe-core").exists()
         and shutil.which("node")),
    reason="needs Chromium (apt-get install chromium), node, and `npm ci` in tests/web/a11y")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve the app on a loopback port for the browser; yield its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):  # up to 10 s
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _axe(job: dict[str, Any]) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(HERE / "axe_pages.js"), cwd=HERE, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(job).encode()), 180)
    assert proc.returncode == 0, err.decode()[-2000:]
    result: list[dict[str, Any]] = json.loads(out)
    return result


async def enrol_for_pages(engine: AsyncEngine) -> None:
    """Enrol the participant whose pages are visited, with meetings near them and a plan."""
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
        participant, _code = await enrol(
            session, prison_name="HMP Test", display_name="Sam", release_date=date(2026, 12, 10),
            release_postcode="ST3 2", release_lat=52.9856, release_lon=-2.1495,
            phone="+447400123456", now=NOW, goals=["Go to a meeting in week one"])
        assert participant.id == 1


async def test_no_serious_or_critical_axe_findings(served: str, engine: AsyncEngine) -> None:
    logins: dict[str, tuple[str, str]] = {}
    for role in ("champion", "coordinator", "admin"):
        user, password = await make_staff(engine, role=role, region=None)
        logins[role] = (user.email, password)
    await enrol_for_pages(engine)
    visits = [{"name": name, "path": path, "press": press,
               "email": logins[role][0] if role else None,
               "password": logins[role][1] if role else None}
              for name, role, path, press in VISITS]
    results = await _axe({"base": served, "chromium": CHROMIUM, "visits": visits})
    assert [r["name"] for r in results] == [v[0] for v in VISITS]
    for result in results:
        assert "/staff/login" not in result["url"] or result["name"].startswith("sign in")
    blocking = {r["name"]: [v for v in r["violations"] if v["impact"] in BLOCKING]
                for r in results}
    assert blocking == {name: [] for name, *_ in VISITS}
