"""Demo data for the embedded default: a prison, two staff logins, demo meetings."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import StaffRole, StaffUser
from storage.participants import get_or_create_prison

DEMO_PRISON = "HMP Demo (demo)"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash a password with scrypt; the result carries its salt."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Say whether a password matches its stored hash."""
    try:
        _scheme, salt_hex, _digest = stored.split("$")
    except ValueError:
        return False
    return secrets.compare_digest(hash_password(password, salt=bytes.fromhex(salt_hex)), stored)


async def load_demo(engine: AsyncEngine, *, now: datetime) -> dict[str, object]:
    """Create the demo prison, staff logins (new passwords each run) and meetings."""
    logins: dict[str, str] = {}
    async with session_scope(engine) as session:
        prison = await get_or_create_prison(session, DEMO_PRISON)
        for username, role, name in (
            ("champion", StaffRole.CHAMPION, "Demo Recovery Champion"),
            ("coordinator", StaffRole.COORDINATOR, "Demo Coordinator"),
        ):
            password = secrets.token_urlsafe(9)
            user = (await session.exec(select(StaffUser).where(StaffUser.username == username))
                    ).first()
            if user is None:
                user = StaffUser(username=username, display_name=name, role=role,
                                 prison_id=prison.id, password_hash="")
            user.password_hash = hash_password(password)
            session.add(user)
            logins[username] = password
        meetings = await load_demo_meetings(session, now=now)
    return {"prison": DEMO_PRISON, "logins": logins, "meetings": meetings}
