"""Staff accounts: one-time passwords, argon2 hashes, sign-in with lockout, password changes.

The CLI (`throughcare staff add`, `throughcare demo`) and the staff pages call the same
functions here; they only parse input and show the result or the `StaffError` (which names
the field at fault). The caller commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.audit_q import record_staff_action
from storage.errors import StaffExists
from storage.models import StaffRole, StaffUser
from storage.participants import get_or_create_prison
from storage.staff_q import (
    create_staff,
    normalise_email,
    record_failed_login,
    record_sign_in,
    set_password,
    staff_by_email,
)

MAX_FAILED_SIGN_INS = 5  # wrong passwords in a row that lock an account
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 12
MAX_PASSWORD = 128  # hashing a huge "password" is a cheap way to tie up a server
# No 0/O, 1/I/L: easy to read off a screen and type. 31 symbols, 16 of them: 79 bits.
PASSWORD_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
HASHER = PasswordHasher()  # argon2id with the library's recommended costs


class StaffError(ValueError):
    """A staff account request is refused; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SignInProblem(StrEnum):
    WRONG = "wrong"  # unknown email or wrong password: we do not say which
    LOCKED = "locked"  # too many wrong passwords: refused until `locked_until`


@dataclass(frozen=True)
class SignInResult:
    """The outcome of a sign-in: the account, or the problem."""

    staff: StaffUser | None
    problem: SignInProblem | None = None
    locked_until: datetime | None = None


def one_time_password() -> str:
    """Return a fresh readable one-time password: `ABCD-EFGH-JKMN-PQRS`."""
    raw = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


async def hash_password(password: str) -> str:
    """Hash a password with argon2id, off the event loop (it is slow on purpose)."""
    return await asyncio.to_thread(HASHER.hash, password)


async def password_matches(stored: str, password: str) -> bool:
    """Say whether a password matches its stored argon2 hash."""
    try:
        return await asyncio.to_thread(HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _decoy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def session_stamp(staff: StaffUser) -> str:
    """Return what a session must match: a new password or a sign-out ends older sessions."""
    material = f"{staff.session_epoch}:{staff.password_hash}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def is_locked(staff: StaffUser, now: datetime) -> bool:
    """Say whether an account is locked at `now`."""
    return staff.locked_until is not None and staff.locked_until > now


def new_password_problems(new: str, confirm: str) -> dict[str, str]:
    """Return what is wrong with a chosen password, by form field (empty if fine)."""
    problems: dict[str, str] = {}
    if not new:
        problems["new_password"] = "Enter a new password"
    elif len(new) < MIN_PASSWORD:
        problems["new_password"] = f"Your new password must be {MIN_PASSWORD} characters or more"
    elif len(new) > MAX_PASSWORD:
        problems["new_password"] = f"Your new password must be {MAX_PASSWORD} characters or fewer"
    if not confirm:
        problems["confirm_password"] = "Confirm your new password"
    elif new and confirm != new:
        problems["confirm_password"] = "The passwords do not match"
    return problems


def _check_new_account(email: str, role: str, prison: str | None,
                       region: str | None) -> StaffRole:
    if not EMAIL.match(email) or len(email) > 254:
        raise StaffError("email", f"must be an email address like name@example.org, "
                                  f"not {email[:60]!r}")
    try:
        staff_role = StaffRole(role.strip().lower())
    except ValueError:
        raise StaffError("role", "must be champion, coordinator or admin") from None
    if staff_role == StaffRole.CHAMPION and not prison:
        raise StaffError("prison", "is needed for a Champion (the prison they work in)")
    if prison and staff_role != StaffRole.CHAMPION:
        raise StaffError("prison", "is only for a Champion")
    if region and staff_role != StaffRole.COORDINATOR:
        raise StaffError("region", "is only for a coordinator")
    return staff_role


async def add_staff(
    session: AsyncSession,
    *,
    email: str,
    role: str,
    now: datetime,
    prison: str | None = None,
    region: str | None = None,
    display_name: str | None = None,
    must_change_password: bool = True,
) -> tuple[StaffUser, str]:
    """Create a staff account; return it and its one-time password (shown only here)."""
    email = normalise_email(email)
    prison, region = (prison or "").strip() or None, (region or "").strip() or None
    staff_role = _check_new_account(email, role, prison, region)
    prison_id = (await get_or_create_prison(session, prison)).id if prison else None
    password = one_time_password()
    try:
        user = await create_staff(
            session, email=email, display_name=(display_name or email)[:200], role=staff_role,
            password_hash=await hash_password(password), now=now, prison_id=prison_id,
            region=region, must_change_password=must_change_password)
    except StaffExists:
        raise StaffError("email", f"{email} already has an account") from None
    assert user.id is not None
    return user, password


async def reset_password(
    session: AsyncSession, *, staff: StaffUser, now: datetime, must_change_password: bool = True
) -> str:
    """Give an account a new one-time password (and lift any lock); return it."""
    assert staff.id is not None
    password = one_time_password()
    await set_password(session, staff_id=staff.id, password_hash=await hash_password(password),
                       must_change_password=must_change_password)
    await session.refresh(staff)
    return password


async def sign_in(
    session: AsyncSession, *, email: str, password: str, now: datetime
) -> SignInResult:
    """Check an email and password, counting wrong ones towards a lock."""
    staff = await staff_by_email(session, email)
    if len(password) > MAX_PASSWORD:
        return SignInResult(None, SignInProblem.WRONG)  # never ours; not worth hashing
    if staff is None or staff.id is None:
        await password_matches(_decoy_hash(), password)  # take as long as a real check
        return SignInResult(None, SignInProblem.WRONG)
    staff_id = staff.id
    if is_locked(staff, now):
        return SignInResult(None, SignInProblem.LOCKED, staff.locked_until)
    if not await password_matches(staff.password_hash, password):
        staff = await record_failed_login(session, staff_id=staff_id, now=now,
                                          limit=MAX_FAILED_SIGN_INS, lock_for=LOCK_FOR)
        locked = is_locked(staff, now)
        await record_staff_action(session, staff_id=staff_id, now=now,
                                  action="account_locked" if locked else "sign_in_failed")
        if locked:
            return SignInResult(None, SignInProblem.LOCKED, staff.locked_until)
        return SignInResult(None, SignInProblem.WRONG)
    await record_sign_in(session, staff_id=staff_id, now=now)
    if HASHER.check_needs_rehash(staff.password_hash):
        await set_password(session, staff_id=staff_id, password_hash=await hash_password(password),
                           must_change_password=staff.must_change_password)
    await record_staff_action(session, staff_id=staff_id, action="sign_in", now=now)
    await session.refresh(staff)
    return SignInResult(staff)


async def change_password(
    session: AsyncSession, *, staff: StaffUser, new_password: str, now: datetime
) -> None:
    """Set a password the person chose (checked with `new_password_problems` first)."""
    assert staff.id is not None
    if await password_matches(staff.password_hash, new_password):
        raise StaffError("new_password", "Choose a password different from your current one")
    await set_password(session, staff_id=staff.id, must_change_password=False,
                       password_hash=await hash_password(new_password))
    await record_staff_action(session, staff_id=staff.id, action="password_changed", now=now)
    await session.refresh(staff)
