"""The Regions page: admins define regions by postcode or by centre and radius, and see who
and what falls in each; errors beside the field; nobody else may use it."""

from __future__ import annotations

import itertools
from datetime import date, time
from html.parser import HTMLParser
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import AuditEvent, Meeting, MeetingStatus, ParticipantStatus, Region
from storage.participants import enrol
from tests.auxil.web import read_page, submit
from tests.web.conftest import NOW, NewClient, StaffLogin, make_staff

PAGE = "/staff/regions"
_slugs = itertools.count(1)
# (postcode as entered, town as entered, point, status): how enrolment stores a release area.
PEOPLE = (
    ("ST3 2QH", None, (52.9886, -2.1260), ParticipantStatus.ACTIVE),  # full postcode
    ("ST4", None, (52.9943, -2.1853), ParticipantStatus.ACTIVE),  # a district only
    (None, "Stoke-on-Trent", (53.0042, -2.1854), ParticipantStatus.ACTIVE),  # a town
    ("WS1 1AA", None, (52.5860, -1.9813), ParticipantStatus.ACTIVE),
    ("ST3 2QH", None, (52.9886, -2.1260), ParticipantStatus.ENROLLED),  # not active: not counted
    ("ST1 3RS", None, (53.0245, -2.1778), ParticipantStatus.STOPPED),
)


class _Rows(HTMLParser):
    """Read the regions table: row heading -> the cells after it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows[self._row[0]] = self._row[1:]
            self._row = None


def table(html: str) -> dict[str, list[str]]:
    """Return the regions table: name -> [postcodes, centre, people, meetings, actions]."""
    parser = _Rows()
    parser.feed(html)
    parser.rows.pop("Region", None)
    return parser.rows


async def add_people(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        for n, (postcode, town, (lat, lon), status) in enumerate(PEOPLE):
            p, _ = await enrol(session, prison_name="HMP Test", display_name=f"P{n}",
                               release_date=date(2026, 11, 1), release_postcode=postcode,
                               region=town, release_lat=lat, release_lon=lon, now=NOW)
            p.status = status
            session.add(p)


async def add_meeting(engine: AsyncEngine, postcode: str, lat: float, lon: float,
                      status: MeetingStatus = MeetingStatus.ACTIVE) -> None:
    async with session_scope(engine) as session:
        session.add(Meeting(slug=f"r{next(_slugs)}", name="SMART", weekday=1,
                            start_time=time(18), timezone="Europe/London", postcode=postcode,
                            lat=lat, lon=lon, status=status))


async def add(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    form = {"name": "", "postcodes": "", "centre": "", "miles": "", **fields}
    return await submit(client, PAGE, form)


async def test_admin_adds_regions_and_sees_who_and_what_falls_in_each(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await add_people(engine)
    await add_meeting(engine, "ST1 3RS", 53.0245, -2.1778)
    await add_meeting(engine, "ST3 1AA", 52.99, -2.13, MeetingStatus.CANCELLED)
    await add_meeting(engine, "WS1 1AA", 52.5860, -1.9813)
    await staff_login(client, role="admin")
    page = read_page((await client.get(PAGE)).text)
    assert page.h1 == "Regions"
    assert "No regions yet" in (await client.get(PAGE)).text

    made = await add(client, name="Potteries", postcodes="st")
    assert made.status_code == 303 and made.headers["location"] == PAGE
    assert (await add(client, name="ST3 only", postcodes="st3")).status_code == 303
    assert (await add(client, name="West", postcodes="ws, CW")).status_code == 303
    ring = await add(client, name="Stoke ring", centre="Stoke-on-Trent", miles="10")
    assert ring.status_code == 303
    shown = await client.get(PAGE)
    assert read_page(shown.text).notice.startswith(
        "Added region Stoke ring. Its centre landed at Stoke-on-Trent (53.00")

    rows = table(shown.text)
    # Postcode areas and districts reach people entered by postcode or district, not by town.
    assert rows["Potteries"][0] == "ST" and rows["Potteries"][2:4] == ["2", "1"]
    assert rows["ST3 only"][2:4] == ["1", "0"]
    assert rows["West"][0] == "WS, CW" and rows["West"][2:4] == ["1", "1"]
    # A centre and radius reaches the town entry too.
    assert rows["Stoke ring"][1].startswith("10 miles around 53.00")
    assert "near Stoke-on-Trent" in rows["Stoke ring"][1]
    assert rows["Stoke ring"][2:4] == ["3", "1"]
    assert "1 active participant gave a town, not a postcode" in shown.text

    async with session_scope(engine) as session:
        actions = (await session.exec(select(AuditEvent.action).where(
            col(AuditEvent.action) == "region_add"))).all()
    assert len(actions) == 4


async def test_errors_are_shown_beside_the_field_and_nothing_is_added(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await staff_login(client, role="admin")
    assert (await add(client, name="Potteries", postcodes="ST")).status_code == 303
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"name": "", "postcodes": "ST"}, "Name", "A region needs a name"),
        ({"name": "x" * 10_000, "postcodes": "ST"}, "Name", "100 characters or fewer"),
        ({"name": "Stoke \U0001f600", "postcodes": "ST"}, "Name", "letters, numbers"),
        ({"name": "Bell\x07here", "postcodes": "ST"}, "Name", "letters, numbers"),
        ({"name": "POTTERIES", "postcodes": "WS"}, "Name", "already a region called POTTERIES"),
        ({"name": "A", "postcodes": "S7T"}, "Postcode areas or districts",
         "S7T is not a postcode district we know"),
        ({"name": "A", "postcodes": "ST-3"}, "Postcode areas or districts",
         "'ST-3' is not a postcode area"),
        ({"name": "A", "postcodes": "ST \U0001f600"}, "Postcode areas or districts",
         "is not a postcode area"),
        ({"name": "A", "postcodes": "QQ"}, "Postcode areas or districts",
         "QQ is not a UK postcode area"),
        ({"name": "A", "postcodes": "ST99"}, "Postcode areas or districts",
         "ST99 is not a postcode district we know"),
        ({"name": "A", "postcodes": "ST3 2QH"}, "Postcode areas or districts",
         "'2QH' is not a postcode area"),
        ({"name": "A"}, "Postcode areas or districts", "Enter postcode areas or districts"),
        ({"name": "A", "centre": "Stoke-on-Trent"}, "Radius in miles", "Enter the radius"),
        ({"name": "A", "miles": "5"}, "Centre", "Enter a centre for the radius"),
        ({"name": "A", "centre": "ST4 1AA", "miles": "0"}, "Radius in miles",
         "more than 0 and at most 200"),
        ({"name": "A", "centre": "ST4 1AA", "miles": "500"}, "Radius in miles", "at most 200"),
        ({"name": "A", "centre": "ST4 1AA", "miles": "nan"}, "Radius in miles", "at most 200"),
        ({"name": "A", "centre": "ST4 1AA", "miles": "ten"}, "Radius in miles",
         "must be a number of miles"),
        ({"name": "A", "centre": "Nowhereville Xyzzy", "miles": "5"}, "Centre",
         "Cannot find 'Nowhereville Xyzzy'"),
        ({"name": "A", "centre": "\x00" * 300, "miles": "5"}, "Centre", "Cannot find"),
    ]
    for fields, label, message in cases:
        response = await add(client, **fields)
        assert response.status_code == 400, fields
        page = read_page(response.text)
        assert message in page.error_for(label), (fields, page.field_errors)
        assert any(message in text for _href, text in page.summary), fields
        assert page.title.startswith("Error: ")
    kept = read_page((await add(client, name="Keep me", centre="Nowhereville Xyzzy",
                                miles="7")).text)
    assert kept.value_of("Name") == "Keep me" and kept.value_of("Radius in miles") == "7"
    async with session_scope(engine) as session:
        assert [r.name for r in (await session.exec(select(Region))).all()] == ["Potteries"]


async def test_change_a_region_then_delete_it_unless_a_coordinator_names_it(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    await add_people(engine)
    await staff_login(client, role="admin")
    assert (await add(client, name="Potteries", postcodes="ST")).status_code == 303
    assert (await add(client, name="Spare", postcodes="WS")).status_code == 303
    edit = read_page((await client.get(PAGE)).text).links["Change Potteries"]
    form = read_page((await client.get(edit)).text)
    assert form.h1 == "Change Potteries" and form.value_of("Postcode areas or districts") == "ST"

    bad = await submit(client, edit, {"postcodes": "ST", "centre": "ST4 1AA", "miles": "500"})
    assert bad.status_code == 400
    assert "at most 200" in read_page(bad.text).error_for("Radius in miles")
    assert read_page(bad.text).value_of("Centre") == "ST4 1AA"

    changed = await submit(client, edit, {"postcodes": "ST3", "centre": "ST4 1AA",
                                          "miles": "3"})
    assert changed.status_code == 303
    rows = table((await client.get(PAGE)).text)
    assert rows["Potteries"][0] == "ST3" and rows["Potteries"][2] == "3"  # + district, + town
    form = read_page((await client.get(edit)).text)
    assert form.value_of("Centre").startswith("53.00") and form.value_of("Radius in miles") == "3"
    # Emptying the centre and radius leaves postcodes only.
    assert (await submit(client, edit, {"postcodes": "ST", "centre": "", "miles": ""})
            ).status_code == 303
    assert table((await client.get(PAGE)).text)["Potteries"][1:3] == ["None", "2"]

    await make_staff(engine, role="coordinator", region="potteries", email="c@example.org")
    delete = read_page((await client.get(PAGE)).text).links["Delete Potteries"]
    ask = await client.get(delete)
    assert "c@example.org" in ask.text and "Delete region" not in read_page(ask.text).buttons
    token = read_page(ask.text).csrf
    refused = await client.post(delete, data={"csrf_token": token})
    assert refused.status_code == 409 and "You cannot delete this region" in refused.text

    spare = read_page((await client.get(PAGE)).text).links["Delete Spare"]
    assert "Delete region" in read_page((await client.get(spare)).text).buttons
    assert (await submit(client, spare, {})).status_code == 303
    assert read_page((await client.get(PAGE)).text).notice == "Deleted region Spare."
    assert list(table((await client.get(PAGE)).text)) == ["Potteries"]
    assert (await client.get(spare)).status_code == 404
    assert (await client.get("/staff/regions/abc/edit")).status_code == 404


async def test_only_admins_may_use_regions(
        new_client: NewClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        session.add(Region(name="Potteries", postcodes=["ST"]))
    for role, region in (("champion", None), ("coordinator", "Potteries")):
        client = await new_client()
        await staff_login(client, role=role, region=region, email=f"{role}@example.org")
        page = await client.get(PAGE)
        assert page.status_code == 403, role
        token = read_page(page.text).csrf
        for path in (PAGE, "/staff/regions/1/edit", "/staff/regions/1/delete"):
            posted = await client.post(path, data={"csrf_token": token, "name": "X",
                                                   "postcodes": "WS"})
            assert posted.status_code == 403, (role, path)
        assert (await client.get("/staff/regions/1/edit")).status_code == 403
    async with session_scope(engine) as session:
        assert [r.name for r in (await session.exec(select(Region))).all()] == ["Potteries"]
