"""Seal each row's personal values with its participant's data key (see storage.crypto).

A column type cannot know whose row it is writing, so these mapper listeners do it: just
before a row is inserted or updated they seal its values with the data key of the
participant it belongs to (looked up on the flush's own connection, cached on the
session), and just after they put the plaintext back, so our code only sees plaintext.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapper, attributes, object_session
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import crypto
from storage.models.messages import ConversationState, InboundMessage, OutboundMessage
from storage.models.people import (
    ChannelIdentity,
    Participant,
    ParticipantKey,
    ParticipantStatus,
)
from storage.models.plans import AftercarePlan, Appointment, KeyContact
from storage.models.tools import CheckIn, ToolEntry

# Values sealed with the data key of the participant named by `participant_id`.
OWNED: dict[type[SQLModel], tuple[str, ...]] = {
    InboundMessage: ("body",), OutboundMessage: ("body",), CheckIn: ("note",),
    ToolEntry: ("data",), ConversationState: ("data",), AftercarePlan: ("goals",),
    Appointment: ("place", "note"), KeyContact: ("name", "phone"),
}
# What a person typed that reaches the database after their erasure (a message racing the
# confirming YES) is not kept at all; anything else goes under the service key (the
# "your data is erased" reply must still be sent).
DROP_WHEN_ERASED = {(InboundMessage, "body"), (CheckIn, "note")}
_CACHE = "throughcare.data_keys"
_STASH = "throughcare.plain"
ERASED = "erased"
Owner = tuple[str, bytes] | str | None  # (key id, key), ERASED, or None: the service key


def _plaintext(value: Any) -> str | None:
    """Return the text to seal, or None to leave the value as it is."""
    if value is None or isinstance(value, crypto.Ciphertext) or not value:
        return None
    return value if isinstance(value, str) else crypto.dump_json(value)


def _open_key(conn: Connection, kid: str) -> bytes | None:
    cached = crypto._Process.opened.get(kid)
    if cached is not None:
        return cached[0]
    wrapped = crypto.read_wrapped(conn, kid)
    if wrapped is None:
        return None
    key = crypto.current().unwrap(kid, wrapped)
    crypto.remember(kid, key)
    return key


def owner_key(conn: Connection, info: dict[str, Any], participant_id: int | None) -> Owner:
    """Return the data key of a participant (cached on the session), ERASED, or None."""
    if participant_id is None:
        return None
    cache = info.setdefault(_CACHE, {})
    if participant_id not in cache:
        row = conn.execute(text("SELECT status, key_id FROM participant WHERE id = :pid"),
                           {"pid": participant_id}).first()
        owner: Owner = None
        if row is not None and row[0] == ParticipantStatus.DELETED:
            owner = ERASED
        elif row is not None and row[1]:
            key = _open_key(conn, row[1])
            owner = ERASED if key is None else (str(row[1]), key)
        cache[participant_id] = owner
    found: Owner = cache[participant_id]
    return found


def forget_owner(info: dict[str, Any], participant_id: int) -> None:
    """Drop a participant's cached key from a session (it was destroyed)."""
    info.get(_CACHE, {}).pop(participant_id, None)


def _seal(owner: Owner, plain: str) -> crypto.Ciphertext:
    if isinstance(owner, tuple):
        return crypto.seal_with(owner[0], owner[1], plain)
    return crypto.seal_service(plain)


def _changed(target: Any, name: str, inserting: bool) -> bool:
    return inserting or attributes.get_history(target, name).has_changes()


def _to_seal(target: Any, inserting: bool) -> dict[str, str]:
    """Return the plaintext of the owned values this write changes."""
    found = {}
    for name in OWNED.get(type(target), ()):
        plain = _plaintext(getattr(target, name))
        if plain is not None and _changed(target, name, inserting):
            found[name] = plain
    return found


def _seal_row(target: Any, owner: Owner, plain: dict[str, str]) -> None:
    stash: dict[str, Any] = {}
    for name in plain:
        stash[name] = getattr(target, name)
        if owner == ERASED and (type(target), name) in DROP_WHEN_ERASED:
            setattr(target, name, None)
            stash[name] = None
        else:
            setattr(target, name, _seal(owner, plain[name]))
    attributes.instance_state(target).info[_STASH] = stash


def _before_owned(inserting: bool) -> Any:
    def listener(_mapper: Mapper[Any], conn: Connection, target: Any) -> None:
        plain = _to_seal(target, inserting)
        if not plain:  # e.g. a status change: nothing to seal, no key to look up
            return
        session = object_session(target)
        info = session.info if session is not None else {}
        _seal_row(target, owner_key(conn, info, target.participant_id), plain)
    return listener


def _restore(_mapper: Mapper[Any], _conn: Connection, target: Any) -> None:
    for name, value in attributes.instance_state(target).info.pop(_STASH, {}).items():
        attributes.set_committed_value(target, name, value)


def _participant_key(conn: Connection, target: Participant) -> Owner:
    if target.status == ParticipantStatus.DELETED:
        return ERASED
    if target.key_id:
        key = _open_key(conn, target.key_id)
        return ERASED if key is None else (target.key_id, key)
    kid, key = crypto.new_data_key()  # a new participant, or one from before sealing
    conn.execute(ParticipantKey.__table__.insert().values(  # type: ignore[attr-defined]
        id=kid, wrapped=crypto.current().wrap(kid, key), created_at=target.updated_at))
    target.key_id = kid
    return kid, key


def _before_participant(inserting: bool) -> Any:
    def listener(_mapper: Mapper[Any], conn: Connection, target: Participant) -> None:
        plain = _plaintext(target.display_name)
        if plain is None or not _changed(target, "display_name", inserting):
            return
        owner = _participant_key(conn, target)
        attributes.instance_state(target).info[_STASH] = {"display_name": target.display_name}
        target.display_name = _seal(owner, plain)
    return listener


def _after_participant(_mapper: Mapper[Any], conn: Connection, target: Participant) -> None:
    _restore(_mapper, conn, target)
    session = object_session(target)
    if session is not None and target.id is not None:
        forget_owner(session.info, target.id)  # its key may have just been made or changed


for _model in OWNED:
    event.listen(_model, "before_insert", _before_owned(True))
    event.listen(_model, "before_update", _before_owned(False))
    event.listen(_model, "after_insert", _restore)
    event.listen(_model, "after_update", _restore)
event.listen(Participant, "before_insert", _before_participant(True))
event.listen(Participant, "before_update", _before_participant(False))
event.listen(Participant, "after_insert", _after_participant)
event.listen(Participant, "after_update", _after_participant)


async def seal_for(
    session: AsyncSession, participant_id: int | None, value: str | None, *,
    drop_if_erased: bool = False,
) -> str | None:
    """Seal a value for a Core insert as the listeners would for a row of this participant.

    For a participant already erased: None with `drop_if_erased`, else the service key.
    """
    plain = _plaintext(value)
    if plain is None:
        return value
    owner = await session.run_sync(
        lambda s: owner_key(s.connection(), s.info, participant_id))
    if owner == ERASED and drop_if_erased:
        return None
    return _seal(owner, plain)


# Every sealed column, participants first (sealing an old participant gives them a key).
SEALED: dict[type[SQLModel], tuple[str, ...]] = {
    Participant: ("display_name", "phone"), ChannelIdentity: ("address",),
    **OWNED, OutboundMessage: ("address", "body"),
}


async def seal_existing(engine: AsyncEngine, *, batch: int = 500) -> dict[str, int]:
    """Seal rows written before sealing, `batch` rows a transaction; say how many a table.

    Harmless to run again: a row already sealed is sealed afresh.
    """
    counts: dict[str, int] = {}
    for model, names in SEALED.items():
        key = cast(Mapper[Any], inspect(model)).primary_key[0]
        after: Any = None
        counts[str(model.__tablename__)] = 0
        while True:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                query = select(model).order_by(key).limit(batch)
                if after is not None:
                    query = query.where(key > after)
                rows = list((await session.exec(query)).all())
                for row in rows:
                    for name in names:
                        if getattr(row, name):
                            attributes.flag_modified(row, name)
                    session.add(row)
                await session.commit()
            counts[str(model.__tablename__)] += len(rows)
            if len(rows) < batch:
                break
            after = getattr(rows[-1], str(key.key))
    return counts
