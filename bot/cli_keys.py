"""Key commands: `throughcare keys new`, `status`, `rotate` and `seal` (see cli.py).

Rotating the master key while the service runs:
1. `throughcare keys new` prints a fresh DATA_KEY value.
2. Set DATA_KEY="NEW,OLD" everywhere and restart: every process then unwraps with either
   key and wraps new participants' keys with NEW.
3. `throughcare keys rotate` re-wraps every participant's data key with NEW (in batches).
4. When `throughcare keys status` shows only NEW, set DATA_KEY="NEW" and destroy OLD: the
   participant keys in older backups, and with them any erased person's data there, can
   then no longer be opened.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import settings_or_exit
from bot.runtime import open_engine, prepare_database
from storage import crypto
from storage.models.sealed import seal_existing

T = TypeVar("T")
app = typer.Typer(help="Data keys: make, rotate, seal.", no_args_is_help=True)


def on_database(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` against the configured database (settings also install the keys)."""
    settings = settings_or_exit()

    async def go() -> T:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@app.command("new")
def new_cmd() -> None:
    """Print fresh DATA_KEY and BLIND_KEY values (BLIND_KEY only once, ever)."""
    typer.echo(f"DATA_KEY={crypto.new_secret()}")
    typer.echo(f"BLIND_KEY={crypto.new_secret()}")


@app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count participant keys by the master key that wraps them."""
    counts = on_database(crypto.key_census)
    current = crypto.current().current_id
    if as_json:
        typer.echo(json.dumps({"current": current, "wrapped_by": counts}))
        return
    typer.echo(f"current master key: {current}")
    for mid, n in sorted(counts.items()):
        typer.echo(f"  {mid}: {n} participant keys{' (current)' if mid == current else ''}")


@app.command("rotate")
def rotate_cmd(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Keys a transaction.")] = 500,
) -> None:
    """Re-wrap every participant's data key with the first key in DATA_KEY."""
    started = time.perf_counter()
    done = on_database(lambda engine: crypto.rotate(engine, batch=batch))
    typer.echo(f"re-wrapped {done} participant keys in {time.perf_counter() - started:.2f} s")


@app.command("seal")
def seal_cmd(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows a transaction.")] = 500,
) -> None:
    """Seal rows written before sealing (after `throughcare db upgrade`; safe to repeat)."""
    counts = on_database(lambda engine: seal_existing(engine, batch=batch))
    typer.echo(", ".join(f"{table}: {n}" for table, n in counts.items()))
