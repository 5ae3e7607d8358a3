"""Backups: an online copy of a SQLite file; pg_dump and pg_restore for PostgreSQL.

A SQLite backup is taken with SQLite's own backup API inside one read transaction, so it
is a consistent copy even while the service writes, and it includes what is still only in
the `-wal` file. It is written beside its final name and renamed into place, so a crash
never leaves half a backup under the real name. A PostgreSQL backup is `pg_dump
--format=custom`, also a consistent snapshot taken while the service runs.

What a backup holds (see storage.crypto): every table, including `participantkey`, the
participants' data keys wrapped by DATA_KEY. It never holds DATA_KEY or BLIND_KEY (or local
mode's `.keys` file): without them names, messages and addresses in it cannot be read, so
keys are kept apart from backups. Because the wrapped keys are in it, a backup taken
before someone's erasure still opens their data with the master key of that time; it stops
opening when that master key is destroyed after a rotation (`throughcare keys rotate`).
Their addresses are sealed under BLIND_KEY, which never changes, so only deleting the
backup removes those: keep backups for a short, fixed time.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from storage.errors import BackupError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"  # the first bytes of pg_dump's custom format
# Connection settings a libpq tool reads from the environment, by their URL query name.
_PG_QUERY_ENV = {"sslmode": "PGSSLMODE", "ssl": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
                 "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "host": "PGHOST",
                 "port": "PGPORT", "connect_timeout": "PGCONNECT_TIMEOUT"}


@dataclass(frozen=True)
class Summary:
    """What a backup file holds, in counts only."""

    path: Path
    size: int  # bytes
    tables: int
    rows: int | None = None  # None where it was not counted (PostgreSQL)

    def line(self) -> str:
        """Return the size and counts as words: `1.2 MB, 34 tables, 5,120 rows`."""
        words = [_size(self.size), f"{self.tables} tables"]
        if self.rows is not None:
            words.append(f"{self.rows:,} rows")
        return ", ".join(words)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KB"
    for bigger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def kind_of(path: Path) -> str | None:
    """Say what a backup file is by its first bytes: "sqlite", "postgresql" or None."""
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError:
        return None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    return "postgresql" if head.startswith(PG_MAGIC) else None


def sqlite_file(url: str) -> Path | None:
    """Return the file a SQLite URL names (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _staging(target: Path) -> Path:
    """Return where a file is written before it is renamed to `target`."""
    return target.with_name(target.name + ".tmp")


def _make_room(target: Path, *, force: bool) -> Path:
    """Refuse an existing target unless forced; return a clean staging path beside it."""
    if target.exists() and not force:
        raise BackupError(f"{target} already exists: choose another name, or add --force")
    if target.is_dir():
        raise BackupError(f"{target} is a folder: give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging(target)
    staging.unlink(missing_ok=True)
    return staging


def _fsync(path: Path, mode: int = 0o600) -> None:
    """Flush a finished file to disk; by default only its owner may read it (it is data)."""
    path.chmod(mode)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """Open an existing SQLite file (never create one) in `ro` or `rw` mode."""
    if not path.is_file():
        raise BackupError(f"no database at {path}")
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=10,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None


def sqlite_summary(path: Path) -> Summary:
    """Check a SQLite backup is whole and ours, and count its tables and rows."""
    if kind_of(path) != "sqlite":
        raise BackupError(f"{path} is not a SQLite database")
    conn = _connect(path, "ro")
    try:
        if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise BackupError(f"{path} is damaged (SQLite quick_check failed)")
        names = [str(n) for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        if "alembic_version" not in names:
            raise BackupError(f"{path} is not a throughcare database (no alembic_version)")
        rows = sum(int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0])
                   for n in names)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from None
    finally:
        conn.close()
    return Summary(path=path, size=path.stat().st_size, tables=len(names), rows=rows)


def backup_sqlite(source: Path, target: Path, *, force: bool = False) -> Summary:
    """Copy a live SQLite database to `target`, consistently, while others write to it."""
    if target.resolve() in {source.resolve(), source.resolve().with_name(source.name + "-wal")}:
        raise BackupError(f"{target} is the database itself: give the backup another name")
    staging = _make_room(target, force=force)
    src = _connect(source, "rw")  # rw: a WAL database's readers need its -shm
    try:
        dst = sqlite3.connect(staging, isolation_level=None)
        try:
            src.backup(dst)  # every page in one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # the backup is one file, no -wal
        finally:
            dst.close()
    except sqlite3.Error as exc:
        staging.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        src.close()
    try:
        summary = sqlite_summary(staging)
    except BackupError:
        staging.unlink(missing_ok=True)
        raise
    _fsync(staging)
    os.replace(staging, target)
    return Summary(path=target, size=summary.size, tables=summary.tables, rows=summary.rows)


def refuse_if_in_use(path: Path) -> None:
    """Raise BackupError when another process has this SQLite database open."""
    if not path.exists():
        return
    conn = _connect(path, "rw")
    try:
        conn.execute("PRAGMA busy_timeout=0")
        # An open WAL-mode connection anywhere holds a shared lock for its whole life.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError:
        raise BackupError(f"{path} is in use: stop the service (run, web, worker) "
                          "and try again") from None
    except sqlite3.DatabaseError:
        raise BackupError(f"{path} is not a SQLite database: move it aside first") from None
    finally:
        conn.close()


def restore_sqlite(backup: Path, target: Path) -> Summary:
    """Put a SQLite backup in place of `target` (the service must be stopped)."""
    summary = sqlite_summary(backup)
    if target.exists() and target.resolve() == backup.resolve():
        raise BackupError(f"{backup} is the database itself: nothing to restore")
    refuse_if_in_use(target)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
    staging = _make_room(target, force=True)
    shutil.copyfile(backup, staging)
    _fsync(staging, mode)
    # A -wal or -shm left by the old file would be replayed into the restored one.
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(staging, target)
    return Summary(path=target, size=summary.size, tables=summary.tables, rows=summary.rows)


def pg_connection(url: str) -> tuple[URL, dict[str, str]]:
    """Return the URL and the environment a libpq tool needs to reach it.

    Everything goes in the environment (the password in PGPASSWORD), so no secret is
    ever on a command line, where `ps` would show it.
    """
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        raise BackupError("DATABASE_URL is not a PostgreSQL database URL")
    env = dict(os.environ)
    given = {"PGHOST": parsed.host, "PGPORT": parsed.port, "PGUSER": parsed.username,
             "PGPASSWORD": parsed.password, "PGDATABASE": parsed.database}
    env.update({key: str(value) for key, value in given.items() if value is not None})
    for name, found in parsed.query.items():
        if name in _PG_QUERY_ENV:
            env[_PG_QUERY_ENV[name]] = found if isinstance(found, str) else found[0]
    return parsed, env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools "
                          "(postgresql-client, the same major version as the server or newer)")
    return found


def _run(args: list[str], env: dict[str, str], secret: str | None) -> str:
    """Run a libpq tool; return its output, or raise its first error line (no password)."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return done.stdout
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
    if secret:
        first = first.replace(secret, "***")
    tool = Path(args[0]).name
    first = first.strip().removeprefix(f"{tool}: ").removeprefix("error: ")
    raise BackupError(f"{tool} failed: {first[:300]}")


def pg_tables(backup: Path) -> int:
    """Check a pg_dump file reads, and count the tables whose rows it holds."""
    if kind_of(backup) != "postgresql":
        raise BackupError(f"{backup} is not a PostgreSQL backup (pg_dump --format=custom)")
    listing = _run([_pg_tool("pg_restore"), "--list", str(backup)], dict(os.environ), None)
    return sum(1 for ln in listing.splitlines() if " TABLE DATA " in ln)


def dump_postgres(url: str, target: Path, *, force: bool = False) -> Summary:
    """Write `pg_dump --format=custom` of the database to `target`, atomically."""
    tool = _pg_tool("pg_dump")
    parsed, env = pg_connection(url)
    staging = _make_room(target, force=force)
    try:
        _run([tool, "--format=custom", "--no-password", f"--file={staging}"], env,
             parsed.password)
        tables = pg_tables(staging)
    except BackupError:
        staging.unlink(missing_ok=True)
        raise
    _fsync(staging)
    os.replace(staging, target)
    return Summary(path=target, size=target.stat().st_size, tables=tables)


def restore_postgres(url: str, backup: Path) -> Summary:
    """Restore a pg_dump file over the database, in one transaction (all or nothing)."""
    tables = pg_tables(backup)
    tool = _pg_tool("pg_restore")
    parsed, env = pg_connection(url)
    _run([tool, "--clean", "--if-exists", "--no-owner", "--single-transaction",
          "--no-password", f"--dbname={parsed.database}", str(backup)], env, parsed.password)
    return Summary(path=backup, size=backup.stat().st_size, tables=tables)
