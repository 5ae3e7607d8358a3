"""INSERT ... ON CONFLICT statements built once, so that SQLAlchemy compiles them once.

SQLAlchemy never caches the SQLite and PostgreSQL dialects' own INSERT (their ON CONFLICT
clauses are not part of its cache keys: `inherit_cache = False`), so an upsert built per
call was compiled per call. On the inbound path that was three compilations a message and
about a seventh of its CPU. Here the same statement is a text clause with each column's own
type on its parameter, so sealing, UTC and JSON processing apply as for any insert, and it
is compiled once and then found in the cache. `ON CONFLICT ... DO NOTHING`, `DO UPDATE SET
... = excluded....` and `RETURNING` read the same on SQLite (3.35 and later) and PostgreSQL.
"""

from __future__ import annotations

import functools

from sqlalchemy import Table, bindparam, text
from sqlalchemy.sql.elements import TextClause


def _name(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _insert(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...]) -> str:
    return (f"INSERT INTO {_name(table.name)} ({', '.join(map(_name, columns))}) "
            f"VALUES ({', '.join(':' + c for c in columns)}) "
            f"ON CONFLICT ({', '.join(map(_name, conflict))})")


def _typed(table: Table, sql: str, columns: tuple[str, ...]) -> TextClause:
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


@functools.cache
def insert_skipping(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...]
                    ) -> TextClause:
    """Return INSERT of `columns` (parameters named as they are) that does nothing when a
    row with the same `conflict` columns is there (its rowcount is then 0)."""
    return _typed(table, f"{_insert(table, columns, conflict)} DO NOTHING", columns)


@functools.cache
def insert_updating(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...],
                    update: tuple[str, ...], returning: tuple[str, ...] = ()) -> TextClause:
    """Return INSERT of `columns` that, when a row with the same `conflict` columns is
    there, sets its `update` columns to the new values; returning `returning`."""
    sets = ", ".join(f"{_name(c)} = excluded.{_name(c)}" for c in update)
    tail = f" RETURNING {', '.join(map(_name, returning))}" if returning else ""
    return _typed(table, f"{_insert(table, columns, conflict)} DO UPDATE SET {sets}{tail}",
                  columns)

