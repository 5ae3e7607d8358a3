"""`throughcare staff add` and `throughcare demo`: the logins they print work in the console."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.core.test_cli import run_cli
from tests.web.conftest import NewClient, sign_in

DEMO_LINE = re.compile(r"^(\S+@example\.org) (\S+)$", re.MULTILINE)


async def test_staff_add_gives_a_one_time_password(db_url: str,
                                                   client: httpx.AsyncClient) -> None:
    result = run_cli(db_url, "staff", "add", "--email", "Ann@Prison.example",
                     "--role", "champion", "--prison", "HMP Leeds", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["email"] == "ann@prison.example" and out["role"] == "champion"
    assert re.fullmatch(r"([2-9A-HJKMNP-Z]{4}-){3}[2-9A-HJKMNP-Z]{4}", out["password"])
    response = await sign_in(client, "ann@prison.example", out["password"])
    assert response.headers["location"] == "/staff/password"  # first sign-in: choose one


def test_staff_add_prints_the_password_in_plain_text(db_url: str) -> None:
    result = run_cli(db_url, "staff", "add", "--email", "cas@example.org",
                     "--role", "coordinator", "--region", "North West")
    assert result.returncode == 0, result.stderr
    assert "Added coordinator cas@example.org (North West)." in result.stdout
    assert re.search(r"^One-time password: \S{19}$", result.stdout, re.MULTILINE)


@pytest.mark.parametrize(("args", "needle"), [
    (["--email", "not-an-email", "--role", "admin"], "--email must be an email address"),
    (["--email", "x@example.org", "--role", "warden"], "--role must be champion, coordinator"),
    (["--email", "x@example.org", "--role", "champion"], "--prison is needed for a Champion"),
    (["--email", "x@example.org", "--role", "admin", "--prison", "HMP X"], "--prison is only"),
])
def test_staff_add_refuses_in_one_line(db_url: str, args: list[str], needle: str) -> None:
    result = run_cli(db_url, "staff", "add", *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_staff_add_refuses_an_email_twice(db_url: str) -> None:
    args = ("staff", "add", "--email", "dup@example.org", "--role", "admin")
    assert run_cli(db_url, *args).returncode == 0
    again = run_cli(db_url, *args, "--json")
    assert again.returncode == 2
    assert json.loads(again.stdout) == {"error": "dup@example.org already has an account",
                                        "field": "email"}


async def test_demo_logins_work_straight_away_and_a_second_demo_resets_them(
        db_url: str, client: httpx.AsyncClient, new_client: NewClient) -> None:
    first = run_cli(db_url, "demo")
    assert first.returncode == 0, first.stderr
    logins = dict(DEMO_LINE.findall(first.stdout))
    assert set(logins) == {"champion@example.org", "coordinator@example.org",
                           "admin@example.org"}
    response = await sign_in(client, "champion@example.org", logins["champion@example.org"])
    assert response.headers["location"] == "/staff/"
    assert "HMP Demo" in (await client.get("/staff/")).text

    second = run_cli(db_url, "demo", "--json")
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout)
    staff = {s["email"]: s for s in out["staff"]}
    assert staff["champion@example.org"] | {"password": ""} == {
        "email": "champion@example.org", "password": "", "role": "champion",
        "prison": "HMP Demo", "region": None}
    assert staff["coordinator@example.org"]["role"] == "coordinator"
    assert staff["admin@example.org"]["role"] == "admin"
    assert out["prison"] == "HMP Demo" and out["meetings"] == 0  # loaded the first time
    other = await new_client()
    old = await sign_in(other, "admin@example.org", logins["admin@example.org"])
    assert old.status_code == 400
    new = await sign_in(other, "admin@example.org", staff["admin@example.org"]["password"])
    assert new.headers["location"] == "/staff/"
