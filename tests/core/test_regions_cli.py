"""`throughcare regions` and `broadcast --region`: regions mean geography, end to end."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.accounts import add_staff
from storage.db import session_scope
from storage.models import ParticipantStatus
from storage.participants import enrol, link_identity
from tests.core.test_cli import run_cli

NOW = datetime.now(UTC).replace(microsecond=0)
# As enrolment stores them: a postcode keeps its text and point, a town only its point.
PEOPLE = (
    ("ST3 2QH", None, 52.9886, -2.1260),
    (None, "Stoke-on-Trent", 53.0027, -2.1794),
    ("WS1 1AA", None, 52.5850, -1.9829),
    ("LS1 4AP", None, 53.7960, -1.5470),
)


async def _people(engine: AsyncEngine) -> None:
    """Enrol and link four active people released to Stoke (twice), Walsall and Leeds."""
    async with session_scope(engine) as session:
        for n, (postcode, town, lat, lon) in enumerate(PEOPLE):
            p, _code = await enrol(session, prison_name="HMP Test", display_name=f"P{n}",
                                   release_date=date(2026, 11, 1), release_postcode=postcode,
                                   region=town, release_lat=lat, release_lon=lon, now=NOW)
            p.status = ParticipantStatus.ACTIVE
            p.consent_at = NOW
            session.add(p)
            await link_identity(session, participant=p, channel="sms",
                                address=f"+44770090020{n}", now=NOW)


def audience(db_url: str, name: str) -> str:
    out = run_cli(db_url, "broadcast", "--region", name, "--text", "Hi", "--dry-run", stdin="")
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[0]


async def test_regions_add_list_and_broadcast_by_geography(
        engine: AsyncEngine, db_url: str) -> None:
    await _people(engine)
    added = run_cli(db_url, "regions", "add", "Stoke postcodes", "--postcodes", "st, ws ,CW",
                    "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"name": "Stoke postcodes",
                                        "postcodes": ["ST", "WS", "CW"],
                                        "centre": None, "miles": None}
    ring = run_cli(db_url, "regions", "add", "Stoke-on-Trent", "--centre", "53.0,-2.18",
                   "--miles", "10")
    assert ring.returncode == 0, ring.stderr
    assert ring.stdout.strip() == ("Added region Stoke-on-Trent: within 10 miles of "
                                   "53,-2.18.")
    district = run_cli(db_url, "regions", "add", "ST3 only", "--postcodes", "ST3")
    assert district.returncode == 0, district.stderr

    listed = run_cli(db_url, "regions", "list", "--json")
    assert [r["name"] for r in json.loads(listed.stdout)] == [
        "ST3 only", "Stoke postcodes", "Stoke-on-Trent"]
    plain = run_cli(db_url, "regions", "list")
    assert "Stoke postcodes: postcodes ST, WS, CW" in plain.stdout

    # Postcode areas reach only people entered by postcode (ST3 2QH, WS1 1AA): a town has none.
    assert audience(db_url, "stoke postcodes") == "Audience: 2 people."
    assert audience(db_url, "ST3 only") == "Audience: 1 people."
    # A centre and radius reaches both Stoke entries, by postcode and by town.
    assert audience(db_url, "Stoke-on-Trent") == "Audience: 2 people."


async def test_unknown_region_and_bad_definitions_are_one_line_exit_2(db_url: str) -> None:
    assert run_cli(db_url, "regions", "add", "Stoke", "--postcodes", "ST").returncode == 0
    unknown = run_cli(db_url, "broadcast", "--region", "Leeds", "--text", "Hi", "--dry-run",
                      stdin="")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("no region called 'Leeds'; known regions: Stoke "
                                      "(add one with `throughcare regions add`)")
    for args in (["Stoke", "--postcodes", "WS"], ["X"], ["X", "--postcodes", "ST3 2QH"],
                 ["X", "--centre", "53,-2"], ["X", "--centre", "north", "--miles", "5"],
                 ["X", "--centre", "53,-2", "--miles", "500"]):
        out = run_cli(db_url, "regions", "add", *args)
        assert out.returncode == 2, args
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


async def test_regions_update_and_delete(engine: AsyncEngine, db_url: str) -> None:
    await _people(engine)
    assert run_cli(db_url, "regions", "add", "Stoke", "--postcodes", "ST").returncode == 0
    assert audience(db_url, "Stoke") == "Audience: 1 people."
    ring = run_cli(db_url, "regions", "update", "stoke", "--centre", "53.0,-2.18", "--miles",
                   "10", "--json")
    assert ring.returncode == 0, ring.stderr
    assert json.loads(ring.stdout) == {"name": "Stoke", "postcodes": ["ST"],
                                       "centre": [53.0, -2.18], "miles": 10.0}
    assert audience(db_url, "Stoke") == "Audience: 2 people."  # now the town entry too
    wider = run_cli(db_url, "regions", "update", "Stoke", "--miles", "40")
    assert wider.stdout.strip() == ("Changed region Stoke: postcodes ST or within 40 miles "
                                    "of 53,-2.18.")
    assert audience(db_url, "Stoke") == "Audience: 3 people."
    plain = run_cli(db_url, "regions", "update", "Stoke", "--no-centre", "--postcodes",
                    "ws cw", "--json")
    assert json.loads(plain.stdout)["postcodes"] == ["WS", "CW"]
    assert json.loads(plain.stdout)["centre"] is None
    assert audience(db_url, "Stoke") == "Audience: 1 people."
    for args in (["Nowhere", "--postcodes", "ST"], ["Stoke"], ["Stoke", "--postcodes", ""],
                 ["Stoke", "--miles", "5"], ["Stoke", "--postcodes", "S-T"],
                 ["Stoke", "--no-centre", "--centre", "53,-2", "--miles", "3"]):
        out = run_cli(db_url, "regions", "update", *args)
        assert out.returncode == 2, args
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr

    async with session_scope(engine) as session:
        await add_staff(session, email="c@example.org", role="coordinator", prison=None,
                        region="stoke", now=NOW)
    refused = run_cli(db_url, "regions", "delete", "Stoke")
    assert refused.returncode == 2 and "c@example.org" in refused.stderr
    assert run_cli(db_url, "regions", "add", "Spare", "--postcodes", "LS").returncode == 0
    gone = run_cli(db_url, "regions", "delete", "spare", "--json")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["deleted"]["name"] == "Spare"
    listed = run_cli(db_url, "regions", "list", "--json")
    assert [r["name"] for r in json.loads(listed.stdout)] == ["Stoke"]
    missing = run_cli(db_url, "regions", "delete", "Spare")
    assert missing.returncode == 2 and missing.stderr.strip() == "no region called 'Spare'"
