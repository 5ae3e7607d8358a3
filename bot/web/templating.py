"""Server-rendered pages: one Jinja2 environment, one base layout, and `render`.

Every page extends `base.html` and fills its blocks (`title`, `back`, `content`). Forms use
the macros in `partials/forms.html`; a route passes `errors` (field name -> message, in page
order) and `values` (what was typed) and the macros do the rest: the error summary at the
top linking to each field, the message beside the field, the value kept.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from bot.web.staff.session import csrf_token, pop_notice
from storage.models import StaffRole

TEMPLATES = Path(__file__).with_name("templates")
SERVICE_NAME = "throughcare"
ROLE_LABELS = {StaffRole.CHAMPION: "Recovery Champion", StaffRole.COORDINATOR: "Coordinator",
               StaffRole.ADMIN: "Administrator"}


def _page_globals(request: Request) -> dict[str, Any]:
    """Give every page the CSRF token, the signed-in person, any notice, the time and zone."""
    return {
        "now": request.app.state.clock(),
        "tz": request.app.state.settings.tz,
        "csrf_token": csrf_token(request),
        "current_staff": getattr(request.state, "staff", None),
        "notice": pop_notice(request),
        "service_name": SERVICE_NAME,
    }


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def clock_time(moment: datetime, tz: tzinfo) -> str:
    """Return the time of day as people say it, in the service's zone: `2:35pm`."""
    local = moment.astimezone(tz)
    return f"{local.hour % 12 or 12}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"


def when(moment: datetime, tz: tzinfo) -> str:
    """Return a moment as people read it, in the service's zone: `1 Dec 2026, 2:35pm`."""
    local = moment.astimezone(tz)
    return f"{local.day} {local:%b %Y}, {clock_time(local, tz)}"


_env.filters["when"] = when
_env.globals["role_labels"] = ROLE_LABELS
templates = Jinja2Templates(env=_env, context_processors=[_page_globals])


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a template in the base layout (with `errors`, `values` defaulting to empty)."""
    page = {"errors": {}, "values": {}, **(context or {})}
    return templates.TemplateResponse(request, name, page, status_code=status_code)
