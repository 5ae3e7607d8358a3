"""The staff console under /staff: every staff page in one router, and its wiring.

Each noun has a module with its own `router = APIRouter()` (paths relative to /staff);
include it below. Every route on this router gets the CSRF check on POST.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.config import Settings
from bot.web.staff import (
    auth,
    broadcasts,
    cards,
    chosen_meetings,
    feeds,
    home,
    meeting_reports,
    meetings,
    participants,
    plan,
    regions,
    release,
    reports,
    simulator,
    telegram_link,
)
from bot.web.staff.deps import SAFE_METHODS, PasswordChangeRequired, SignInRequired, check_csrf
from bot.web.staff.security import STAFF_PREFIX, StaffSecurityHeaders
from bot.web.staff.session import install_session
from bot.web.templating import render

STATIC = Path(__file__).parent.parent / "static"
ERROR_TITLES = {403: "You cannot use this page", 404: "Page not found"}

router = APIRouter(prefix=STAFF_PREFIX, dependencies=[Depends(check_csrf)])
router.include_router(auth.router)
router.include_router(home.router)
router.include_router(participants.router)
router.include_router(release.router)
router.include_router(plan.router)
router.include_router(chosen_meetings.router)
router.include_router(cards.router)
router.include_router(meeting_reports.router)  # /reports/meetings before /reports/{...}
router.include_router(reports.router)
router.include_router(meetings.router)
router.include_router(feeds.router)
router.include_router(broadcasts.router)
router.include_router(regions.router)
router.include_router(simulator.router)
router.include_router(telegram_link.router)


def _is_staff(request: Request) -> bool:
    path = request.url.path
    return path == STAFF_PREFIX or path.startswith(f"{STAFF_PREFIX}/")


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    """Send someone without a valid session to sign in, then back where they were going."""
    if request.method in SAFE_METHODS:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        request.session["next"] = target
    return RedirectResponse(auth.LOGIN_PATH, status_code=303)


async def _to_password(request: Request, exc: Exception) -> Response:
    """Send someone still using a one-time password to choose their own."""
    return RedirectResponse(auth.PASSWORD_PATH, status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Show staff errors (403, 404, ...) as pages; leave the other routes' JSON alone."""
    assert isinstance(exc, StarletteHTTPException)
    if not _is_staff(request) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    title = ERROR_TITLES.get(exc.status_code, "Sorry, there is a problem")
    detail = exc.detail if exc.status_code == 403 else None
    return render(request, "error.html", {"title": title, "detail": detail},
                  status_code=exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """Show a staff URL with a malformed id (`/participants/abc`) as not found."""
    assert isinstance(exc, RequestValidationError)
    if not _is_staff(request):
        return await request_validation_exception_handler(request, exc)
    return await _http_error(request, StarletteHTTPException(404))


def install_staff_console(app: FastAPI, settings: Settings) -> None:
    """Add the staff pages, their session cookie, headers, static files and error pages."""
    install_session(app, settings)
    app.add_middleware(StaffSecurityHeaders)
    app.mount(f"{STAFF_PREFIX}/static", StaticFiles(directory=STATIC), name="staff-static")
    app.include_router(router)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(PasswordChangeRequired, _to_password)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
