"""Staff account commands: `throughcare staff add` (see cli.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from bot.cli import refuse, settings_or_exit
from bot.runtime import open_engine, prepare_database
from storage.audit_q import record_cli_action
from storage.db import session_scope

app = typer.Typer(help="Staff accounts for the staff console.", no_args_is_help=True)


@app.command("add")
def add(
    email: Annotated[str, typer.Option(help="Their work email; they sign in with it.")],
    role: Annotated[str, typer.Option(help="champion, coordinator or admin.")],
    prison: Annotated[str | None, typer.Option(help="A Champion's prison.")] = None,
    region: Annotated[str | None, typer.Option(help="A coordinator's region.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a staff account and print its one-time password."""
    from bot.accounts import StaffError, add_staff

    settings = settings_or_exit()

    async def go() -> dict[str, Any]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            async with session_scope(engine) as session:
                now = datetime.now(UTC)
                user, password = await add_staff(session, email=email, role=role,
                                                 prison=prison, region=region, now=now)
                await record_cli_action(session, action="staff_added", now=now,
                                        detail={"staff_id": user.id, "role": str(user.role)})
            return {"email": user.email, "password": password, "role": str(user.role),
                    "prison": prison.strip() if prison else None, "region": user.region}
        finally:
            await engine.dispose()

    try:
        out = asyncio.run(go())
    except StaffError as exc:
        refuse(exc.field, exc.message, as_json)
    if as_json:
        typer.echo(json.dumps(out))
        return
    where = f" ({out['prison'] or out['region']})" if out["prison"] or out["region"] else ""
    typer.echo(f"Added {out['role']} {out['email']}{where}.")
    typer.echo(f"One-time password: {out['password']}")
    typer.echo(f"Give it to them yourself. At {settings.public_base_url}/staff/login they "
               "sign in with it and choose their own password.")
