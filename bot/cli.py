"""The `throughcare` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.sms import normalise_number
from bot.config import ConfigError, Settings, load_settings
from bot.runtime import (
    EXIT_DATABASE_UNREACHABLE,
    DatabaseUnreachable,
    open_engine,
    prepare_database,
    setup_logging,
)

app = typer.Typer(help="throughcare: SMART Recovery aftercare through the prison gate.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _register_subapps() -> None:
    if any(group.name == "meetings" for group in app.registered_groups):
        return
    from bot.cli_ops import broadcast_cmd, move_release_cmd, outbox_cmd

    app.command("broadcast")(broadcast_cmd)
    app.command("outbox")(outbox_cmd)
    app.command("move-release")(move_release_cmd)
    from bot.cli_audit import audit_cmd

    app.command("audit")(audit_cmd)
    from bot.cli_staff import app as staff_app

    app.add_typer(staff_app, name="staff", help="Staff accounts for the staff console.")
    from bot.cli_regions import app as regions_app

    app.add_typer(regions_app, name="regions", help="Regions by postcode or centre and radius.")
    from bot.cli_keys import app as keys_app

    app.add_typer(keys_app, name="keys", help="Data keys: make, rotate, seal.")
    from bot import cli_db  # noqa: F401  (adds `db backup` and `db restore`)
    try:
        from bot.cli_meetings import app as meetings_app
    except ImportError:  # built in parallel; present on main once merged
        return
    app.add_typer(meetings_app, name="meetings", help="Import, export and search meetings.")


def settings_or_exit() -> Settings:
    """Load settings, or print one clear line and exit 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> None:
    """Print one clear line to stderr and exit."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def parse_when(value: str | None) -> datetime:
    """Parse an ISO 8601 moment (naive means UTC), or return now."""
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"not an ISO 8601 time: {value!r}", 2)
        raise
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_phone(raw: str) -> str | None:
    """Return a UK-default number as E.164, or None if it is not a possible number."""
    return normalise_number(raw)


def refuse(field: str, message: str, as_json: bool) -> NoReturn:
    """Print a refused field (one line, or JSON with --json) and exit 2."""
    if as_json:
        typer.echo(json.dumps({"error": message, "field": field}))
    else:
        typer.echo(f"--{field.replace('_', '-')} {message}", err=True)
    raise typer.Exit(2)


@app.command()
def enroll(
    prison: Annotated[str, typer.Option(help="Prison name.")],
    name: Annotated[str, typer.Option(help="First name the person wants to be called.")],
    release_date: Annotated[str, typer.Option(help="Release date, YYYY-MM-DD.")],
    postcode: Annotated[str, typer.Option(help="Release area postcode.")],
    phone: Annotated[str | None, typer.Option(help="UK mobile number (07... or +447...).")] = None,
    channel: Annotated[str, typer.Option(help="sms or telegram.")] = "sms",
    goal: Annotated[list[str] | None, typer.Option(help="A goal; repeat for more.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Enrol a person before release and print their link code."""
    from bot.enrol import EnrolmentError, EnrolmentForm, enrol_participant

    settings = settings_or_exit()
    try:
        released = date.fromisoformat(release_date)
    except ValueError:
        refuse("release_date", f"must be YYYY-MM-DD, not {release_date[:40]!r}", as_json)
    form = EnrolmentForm(prison=prison, name=name, release_date=released, postcode=postcode,
                         phone=phone, channel=channel, goals=tuple(goal or ()))
    try:
        out = asyncio.run(enrol_participant(settings, form, now=datetime.now(UTC)))
    except EnrolmentError as exc:
        refuse(exc.field, exc.message, as_json)
    if as_json:
        typer.echo(json.dumps(out.public()))
    else:
        typer.echo(f"Enrolled {out.name} (participant {out.participant_id}).")
        typer.echo(f"Link code: {out.link_code}  (expires {out.expires.isoformat()})")
        typer.echo("Write it on the release card. They send it by text or Telegram to link.")


@app.command("new-code")
def new_code(
    participant: Annotated[int, typer.Option(help="Participant id (enroll prints it).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Issue a fresh link code for a participant; their earlier codes stop working."""
    from bot.enrol import EnrolmentError, issue_new_code

    settings = settings_or_exit()
    try:
        out = asyncio.run(issue_new_code(settings, participant_id=participant,
                                         now=datetime.now(UTC)))
    except EnrolmentError as exc:
        refuse(exc.field, exc.message, as_json)
    if as_json:
        typer.echo(json.dumps(out.public()))
    else:
        typer.echo(f"New link code for {out.name} (participant {out.participant_id}): "
                   f"{out.link_code}  (expires {out.expires.isoformat()})")
        typer.echo("Earlier codes no longer work. They send this one by text or Telegram.")


@app.command()
def chat(
    channel: Annotated[str, typer.Option(help="sms or telegram.")] = "sms",
    from_: Annotated[str, typer.Option("--from", help="Phone number or Telegram chat id.")] = "",
    at: Annotated[str | None, typer.Option(help="Pretend it is this ISO 8601 time.")] = None,
) -> None:
    """Talk to the service as a participant: one message per line of stdin."""
    from bot.chat import run_chat

    settings = settings_or_exit()
    if channel not in ("sms", "telegram"):
        fail("--channel must be sms or telegram", 2)
    address = from_.strip()
    if channel == "sms":
        address = normalise_phone(address) or ""
        if not address:
            fail("--from must be a phone number for sms", 2)
    elif not address.lstrip("-").isdigit():
        fail("--from must be a numeric Telegram chat id", 2)
    interactive = sys.stdin.isatty()
    now = parse_when(at) if at else None
    asyncio.run(run_chat(settings, channel=channel, address=address, lines=sys.stdin,
                         interactive=interactive, now=now))


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load demo data: a prison, a Champion, a coordinator and an admin login, and meetings."""
    from bot.demo import load_demo

    settings = settings_or_exit()

    async def go() -> dict[str, Any]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            return await load_demo(engine, now=datetime.now(UTC),
                                   local_mode=settings.local_mode)
        finally:
            await engine.dispose()

    out = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"Demo prison: {out['prison']}")
    typer.echo("Staff console logins, at /staff/login (email password):")
    for staff in out["staff"]:
        typer.echo(f"{staff['email']} {staff['password']}")
    if not settings.local_mode:
        typer.echo("These are one-time passwords: each asks for a new one at first sign-in.")
    typer.echo(f"Demo meetings loaded: {out['meetings']} (all marked demo)")


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    telegram_polling: Annotated[bool, typer.Option(help="Poll Telegram (local dev).")] = False,
) -> None:
    """Run web and worker in one process (the embedded default)."""
    from bot.serve import serve

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    asyncio.run(serve(settings, host=host, port=port, web=True, worker=True,
                      telegram_polling=telegram_polling))


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web app only (webhooks, staff pages, health, metrics)."""
    from bot.serve import serve

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    asyncio.run(serve(settings, host=host, port=port, web=True, worker=False))


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run one cycle and exit.")] = False,
    now: Annotated[str | None, typer.Option(help="ISO 8601 time for --once.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Plan and show, send nothing.")] = False,
) -> None:
    """Run the scheduler: planning and the outbox dispatcher."""
    from bot.serve import run_worker_once, serve

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    if once:
        out = asyncio.run(run_worker_once(settings, now=parse_when(now), dry_run=dry_run))
        typer.echo(json.dumps(out))
        return
    asyncio.run(serve(settings, host="", port=0, web=False, worker=True))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database schema to the newest version."""
    settings = settings_or_exit()

    async def go() -> None:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    typer.echo("Database is up to date.")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What changed.")],
) -> None:
    """Write a new migration from the model changes (developers; uses a scratch SQLite)."""
    import tempfile

    from storage.db import make_engine
    from storage.migrate import new_revision

    async def go(path: str) -> None:
        engine = make_engine(f"sqlite:///{path}/scratch.db")
        try:
            await new_revision(engine, message)
        finally:
            await engine.dispose()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(go(tmp))


def _database_place() -> str:
    """Say where DATABASE_URL points (host and port, or the SQLite file), never a password."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(load_settings().database_url)
    except (ConfigError, ValueError):
        return "the configured database"
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _database_errors() -> tuple[type[BaseException], ...]:
    """Return what a stopped or unreachable database raises through our engine."""
    import socket

    errors: tuple[type[BaseException], ...] = (SQLAlchemyError, ConnectionError, TimeoutError,
                                               socket.gaierror)
    try:
        from asyncpg.exceptions import PostgresError
        from asyncpg.exceptions import _base as asyncpg_base
    except ImportError:
        return errors
    return (*errors, PostgresError, asyncpg_base.InterfaceError)


def main() -> None:
    """Entry point of the `throughcare` console script."""
    _register_subapps()
    try:
        app()
    except DatabaseUnreachable as exc:  # `run`, `web`, `worker`: waited, then gave up
        typer.echo(str(exc), err=True)
        raise SystemExit(EXIT_DATABASE_UNREACHABLE) from None
    except _database_errors() as exc:
        # One clear line, not a trace: the usual causes are a stopped server or an old schema.
        text = str(exc).strip()
        first = text.splitlines()[0][:200] if text else type(exc).__name__
        typer.echo(f"database error at {_database_place()}: {first} (is the database running "
                   "and up to date? try: throughcare db upgrade)", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
