"""Link a coordinator's own Telegram account, for the bot's staff commands (/meetings,
/broadcast).

The page shows a one-time code, valid for 15 minutes, and the bot's link; the coordinator
sends `/staff CODE` to the bot (or opens the link, which sends `/start staff-CODE`), and the
bot links the chat (handlers.staff_commands). Only an HMAC of the code is stored. Each visit
gives a new code, and the code before it stops working.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.web.staff.deps import CoordinatorStaff, NowDep, SessionDep, SettingsDep
from bot.web.staff.session import set_notice
from bot.web.templating import render
from storage.audit_q import record_staff_action
from storage.staff_telegram_q import issue_staff_link_code, unlink_staff_telegram

router = APIRouter()
PAGE = "/staff/telegram"


@router.get("/telegram", response_class=HTMLResponse)
async def telegram_link(request: Request, staff: CoordinatorStaff, session: SessionDep,
                        now: NowDep, settings: SettingsDep) -> HTMLResponse:
    """Show a new one-time code and how to send it to the bot; offer to unlink."""
    assert staff.id is not None
    code, expires = await issue_staff_link_code(
        session, staff=staff, key=settings.secret_key.get_secret_value(), now=now)
    await record_staff_action(session, staff_id=staff.id, action="telegram_code_issued",
                              now=now)
    username = settings.telegram_bot_username
    deep_link = (f"https://t.me/{username}?start=staff-{code.replace('-', '')}"
                 if username else None)
    return render(request, "staff/telegram.html", {
        "code": code, "expires": expires, "username": username, "deep_link": deep_link,
        "linked": staff.telegram_id is not None})


@router.post("/telegram/unlink")
async def unlink(request: Request, staff: CoordinatorStaff, session: SessionDep,
                 now: NowDep) -> Response:
    """Forget this person's Telegram account: its chat is an ordinary chat again."""
    assert staff.id is not None
    was_linked = staff.telegram_id is not None
    await unlink_staff_telegram(session, staff=staff)
    if was_linked:
        await record_staff_action(session, staff_id=staff.id, action="telegram_unlinked",
                                  now=now)
    set_notice(request, "Your Telegram account is unlinked. The bot's staff commands no "
                        "longer work from it.")
    return RedirectResponse(PAGE, status_code=303)
