"""The staff session: a signed cookie holding who is signed in, when last seen, a CSRF token.

Starlette's SessionMiddleware keeps the session in the cookie itself, signed with SECRET_KEY
(HttpOnly, SameSite=Lax, Secure when PUBLIC_BASE_URL is https, sent only under /staff).
Keys: `staff_id`, `stamp` (a fingerprint of the password hash: a new password ends older
sessions), `seen` (epoch seconds of the last request, by the app's clock, for the idle
timeout), `csrf`, `next` (where to go after signing in) and `notice` (a one-off message).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware

from bot.config import PLACEHOLDER, Settings

logger = logging.getLogger(__name__)

COOKIE = "throughcare_staff"
STAFF_PATH = "/staff"


def install_session(app: FastAPI, settings: Settings) -> None:
    """Add the signed-cookie session, sent by browsers only to the staff pages."""
    secret = settings.secret_key.get_secret_value()
    if secret == PLACEHOLDER:
        # Local mode only (config refuses the placeholder elsewhere): a key nobody can read
        # in the source, so a cookie cannot be forged; sign-ins end when the process does.
        logger.warning("SECRET_KEY is not set: staff sessions last until this process stops")
        secret = secrets.token_urlsafe(32)
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=COOKIE,
                       max_age=None, path=STAFF_PATH, same_site="lax",
                       https_only=settings.https)


def csrf_token(request: Request) -> str:
    """Return this session's CSRF token, making one if it has none."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_matches(request: Request, sent: object) -> bool:
    """Say whether a form's token is this session's."""
    expected = request.session.get("csrf")
    return (isinstance(sent, str) and isinstance(expected, str)
            and secrets.compare_digest(sent.encode(), expected.encode()))


def start_session(request: Request, *, staff_id: int, stamp: str, now: datetime) -> str | None:
    """Begin a signed-in session with fresh tokens; return where the person was going."""
    going = request.session.get("next")
    request.session.clear()  # nothing from before signing in carries over
    request.session.update(staff_id=staff_id, stamp=stamp, seen=now.timestamp(),
                           csrf=secrets.token_urlsafe(32))
    if isinstance(going, str) and going.startswith(f"{STAFF_PATH}/") and "//" not in going:
        return going
    return None


def end_session(request: Request, *, notice: str | None = None) -> None:
    """Forget who is signed in, leaving only a notice for the sign-in page."""
    request.session.clear()
    if notice:
        request.session["notice"] = notice


def set_notice(request: Request, message: str) -> None:
    """Show a one-off message at the top of the next page (e.g. "Password changed")."""
    request.session["notice"] = message


def pop_notice(request: Request) -> str | None:
    """Return and forget the one-off message, if any."""
    if "session" not in request.scope:
        return None
    notice = request.session.pop("notice", None)
    return notice if isinstance(notice, str) else None
