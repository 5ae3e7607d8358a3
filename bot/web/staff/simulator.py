"""The simulator page: any staff member tries the service as a throwaway participant.

The route only reads the form and renders; `bot.simulator` does the work with the real
engine. Nothing is sent to any provider, and the throwaway person is erased at the end.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import simulator
from bot.config import Settings
from bot.web.staff.deps import CurrentStaff, NowDep, SessionDep, SettingsDep
from bot.web.staff.session import set_notice
from bot.web.templating import render
from handlers.types import EngineContext

router = APIRouter()

PATH = "/staff/simulator"
CODE_KEY = "simulator_code"  # the code to type, kept in the signed session until linked
STARTS = [("card", "Start as a new person with a release card"),
          ("linked", "Start as a person who has already linked")]
MAX_PAYLOAD = 64  # Telegram's limit on a button's data


def _ctx(settings: Settings, now: datetime) -> EngineContext:
    return EngineContext(now=now, timezone=settings.tz, public_base_url=settings.public_base_url)


async def _page(request: Request, session: AsyncSession, staff_id: int, *,
                errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                status_code: int = 200) -> HTMLResponse:
    sim = await simulator.simulation(session, staff_id)
    code = request.session.get(CODE_KEY) if sim is not None and not sim.linked else None
    return render(request, "staff/simulator.html", {
        "sim": sim, "code": code, "renderings": list(simulator.RENDERING_LABELS.items()),
        "rendering_labels": simulator.RENDERING_LABELS, "starts": STARTS,
        "max_message": simulator.MAX_MESSAGE, "errors": errors or {}, "values": values or {},
    }, status_code=status_code)


@router.get("/simulator", response_class=HTMLResponse)
async def simulator_page(request: Request, staff: CurrentStaff,
                         session: SessionDep) -> HTMLResponse:
    """Show the simulator: how to start, or the conversation so far."""
    return await _page(request, session, staff.id or 0)


def _choice(form_value: object, allowed: list[str]) -> str | None:
    return form_value if isinstance(form_value, str) and form_value in allowed else None


@router.post("/simulator/start", response_class=HTMLResponse)
async def start_simulation(request: Request, staff: CurrentStaff, session: SessionDep,
                           now: NowDep, settings: SettingsDep) -> Response:
    """Erase any running simulation and start a new throwaway participant."""
    form = await request.form()
    rendering = _choice(form.get("rendering"), list(simulator.RENDERINGS))
    how = _choice(form.get("start"), [value for value, _label in STARTS])
    errors = {}
    if rendering is None:
        errors["rendering"] = "Choose how the conversation shows"
    if how is None:
        errors["start"] = "Choose who to start as"
    if rendering is None or how is None:
        values = {k: v for k in ("rendering", "start")
                  if isinstance(v := form.get(k), str) and len(v) < 20}
        return await _page(request, session, staff.id or 0, errors=errors, values=values,
                           status_code=400)
    code = await simulator.start(session, staff_id=staff.id or 0, rendering=rendering,
                                 linked=how == "linked", ctx=_ctx(settings, now))
    request.session.pop(CODE_KEY, None)
    if code is not None:
        request.session[CODE_KEY] = code
    return RedirectResponse(PATH, status_code=303)


def _message_problem(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return "Enter a message"
    if len(raw) > simulator.MAX_MESSAGE:
        return f"Message must be {simulator.MAX_MESSAGE:,} characters or fewer"
    return None


@router.post("/simulator/say", response_class=HTMLResponse)
async def say(request: Request, staff: CurrentStaff, session: SessionDep, now: NowDep,
              settings: SettingsDep) -> Response:
    """Send what was typed, or the button pressed, as the throwaway participant."""
    form = await request.form()
    payload = form.get("payload")
    if isinstance(payload, str) and payload:
        text, button = "", payload[:MAX_PAYLOAD]
    else:
        raw = form.get("message")
        problem = _message_problem(raw)
        if problem is not None:
            typed = raw[:simulator.MAX_MESSAGE] if isinstance(raw, str) else ""
            return await _page(request, session, staff.id or 0, errors={"message": problem},
                               values={"message": typed}, status_code=400)
        text, button = str(raw), None
    running = await simulator.say(session, staff_id=staff.id or 0, text=text,
                                  payload=button, ctx=_ctx(settings, now))
    if not running:
        set_notice(request, "The simulation had ended. Start a new one.")
    return RedirectResponse(f"{PATH}#latest" if running else PATH, status_code=303)


@router.post("/simulator/end", response_class=HTMLResponse)
async def end_simulation(request: Request, staff: CurrentStaff, session: SessionDep,
                         now: NowDep) -> Response:
    """Erase the throwaway participant and everything they sent and were sent."""
    await simulator.end(session, staff_id=staff.id or 0, now=now)
    request.session.pop(CODE_KEY, None)
    set_notice(request, "The simulated person and their messages have been erased.")
    return RedirectResponse(PATH, status_code=303)
