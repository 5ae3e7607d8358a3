"""Signing in and out, and choosing a password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot import simulator
from bot.accounts import (
    MAX_FAILED_SIGN_INS,
    MIN_PASSWORD,
    SignInProblem,
    StaffError,
    change_password,
    new_password_problems,
    password_matches,
    session_stamp,
    sign_in,
)
from bot.web.staff.deps import NowDep, SessionDep, SettingsDep, SignedInStaff
from bot.web.staff.session import end_session, set_notice, start_session
from bot.web.templating import clock_time, render
from storage.audit_q import record_staff_action
from storage.staff_q import end_sessions, staff_by_id

router = APIRouter()
LOGIN_PATH = "/staff/login"
PASSWORD_PATH = "/staff/password"
HOME_PATH = "/staff/"
FormText = Annotated[str, Form()]


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    """Show the sign-in form (or go home if already signed in)."""
    if "staff_id" in request.session:
        return RedirectResponse(HOME_PATH, status_code=303)
    return render(request, "staff/login.html")


@router.post("/login", response_class=HTMLResponse)
async def log_in(
    request: Request, session: SessionDep, now: NowDep, settings: SettingsDep,
    email: FormText = "", password: FormText = "",
) -> Response:
    """Check the email and password; sign in, or show what is wrong beside the field."""
    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = "Enter your email address"
    if not password:
        errors["password"] = "Enter your password"
    if not errors:
        result = await sign_in(session, email=email, password=password, now=now)
        if result.staff is not None and result.staff.id is not None:
            going = start_session(request, staff_id=result.staff.id, now=now,
                                  stamp=session_stamp(result.staff))
            if result.staff.must_change_password:
                going = PASSWORD_PATH
            return RedirectResponse(going or HOME_PATH, status_code=303)
        if result.problem == SignInProblem.LOCKED and result.locked_until is not None:
            errors["password"] = (
                f"This account is locked after {MAX_FAILED_SIGN_INS} wrong passwords. "
                f"Try again after {clock_time(result.locked_until, settings.tz)}")
        else:
            errors["password"] = "Your email or password is not right"
    return render(request, "staff/login.html", {"errors": errors, "values": {"email": email}},
                  status_code=400)


@router.post("/logout")
async def log_out(request: Request, session: SessionDep, now: NowDep) -> Response:
    """Sign out: forget the session and say so on the sign-in page."""
    staff_id = request.session.get("staff_id")
    staff = await staff_by_id(session, staff_id) if isinstance(staff_id, int) else None
    if staff is not None and staff.id is not None and (
            request.session.get("stamp") == session_stamp(staff)):
        await end_sessions(session, staff_id=staff.id)  # a copied cookie stops working too
        await record_staff_action(session, staff_id=staff.id, action="sign_out", now=now)
        await simulator.end(session, staff_id=staff.id, now=now)  # their throwaway person goes
    end_session(request, notice="You have signed out.")
    return RedirectResponse(LOGIN_PATH, status_code=303)


@router.get("/password", response_class=HTMLResponse)
async def password_page(request: Request, staff: SignedInStaff) -> Response:
    """Show the form to choose a password (asking for the current one unless forced)."""
    return render(request, "staff/password.html", {"forced": staff.must_change_password,
                                                   "min_length": MIN_PASSWORD})


@router.post("/password", response_class=HTMLResponse)
async def choose_password(
    request: Request, staff: SignedInStaff, session: SessionDep, now: NowDep,
    current_password: FormText = "", new_password: FormText = "",
    confirm_password: FormText = "",
) -> Response:
    """Set the chosen password and carry on, or show what is wrong beside the field."""
    errors: dict[str, str] = {}
    forced = staff.must_change_password
    if not forced and not current_password:
        errors["current_password"] = "Enter your current password"
    elif not forced and not await password_matches(staff.password_hash, current_password):
        errors["current_password"] = "Your current password is not right"
    errors |= new_password_problems(new_password, confirm_password)
    if not errors:
        try:
            await change_password(session, staff=staff, new_password=new_password, now=now)
        except StaffError as exc:
            errors[exc.field] = exc.message
    if errors:
        return render(request, "staff/password.html", {
            "errors": errors, "forced": forced, "min_length": MIN_PASSWORD}, status_code=400)
    request.session["stamp"] = session_stamp(staff)  # this session goes on; older ones end
    set_notice(request, "Your password has been changed.")
    return RedirectResponse(HOME_PATH, status_code=303)
