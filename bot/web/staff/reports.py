"""Reports: each participant's engagement and the cohort's figures, on a page and as CSV.

Champions see their prison's participants, admins everyone; each participant shown or
downloaded is an audited read. A coordinator sees the cohort figures for their region,
never a name or a row (and no CSV), and no figure about fewer than five people.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reporting import (
    HOURS_GOAL,
    LINK_WITHIN,
    MEETING_WITHIN,
    MIN_GROUP,
    NATIONAL_BASELINE,
    SESSIONS_GOAL,
    Report,
    build_report,
    report_csv,
)
from bot.web.staff.deps import ChampionStaff, CurrentStaff, NowDep, SessionDep, SettingsDep
from bot.web.templating import render
from storage.audit_q import record_staff_action, record_staff_reads
from storage.models import StaffUser

router = APIRouter()
PAGE = "/staff/reports"
CSV = "/staff/reports.csv"


async def _audit(session: AsyncSession, staff: StaffUser, report: Report, *, page: str,
                 now: datetime) -> None:
    """Audit each participant shown; a figures-only report is one row without a participant."""
    assert staff.id is not None
    if report.named:
        await record_staff_reads(session, staff_id=staff.id, now=now, detail={"page": page},
                                 participant_ids=[r.participant_id for r in report.rows])
    else:
        await record_staff_action(session, staff_id=staff.id, action="cohort_report", now=now,
                                  detail={"page": page, "people": report.cohort.released})


@router.get("/reports", response_class=HTMLResponse)
async def show_reports(request: Request, staff: CurrentStaff, session: SessionDep,
                       now: NowDep, settings: SettingsDep) -> HTMLResponse:
    """Show the engagement report this person may see."""
    report = await build_report(session, staff, now=now)
    await _audit(session, staff, report, page=PAGE, now=now)
    return render(request, "staff/reports.html", {
        "report": report, "region": staff.region, "min_group": MIN_GROUP,
        "baseline": NATIONAL_BASELINE, "sessions_goal": SESSIONS_GOAL,
        "hours_goal": HOURS_GOAL, "link_hours": int(LINK_WITHIN.total_seconds() // 3600),
        "meeting_weeks": MEETING_WITHIN.days // 7})


@router.get("/reports.csv")
async def download_report(staff: ChampionStaff, session: SessionDep, now: NowDep,
                          settings: SettingsDep) -> Response:
    """Send the per-participant report as CSV (Champions and admins only)."""
    report = await build_report(session, staff, now=now)
    await _audit(session, staff, report, page=CSV, now=now)
    assert staff.id is not None  # the download itself, even an empty one, is on record
    await record_staff_action(session, staff_id=staff.id, action="report_export", now=now,
                              detail={"page": CSV, "rows": len(report.rows)})
    day = now.astimezone(settings.tz).date().isoformat()
    return Response(report_csv(report.rows, tz=settings.tz), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="report-{day}.csv"'})
