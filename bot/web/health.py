"""GET /healthz (is the process serving?) and GET /readyz (can it do its work?).

Liveness never touches the database: a restart does not mend an unreachable database, and a
slow one should not get healthy processes killed. Readiness asks the database to answer and
to be at the newest migration, so a load balancer sends no traffic to a process that would
only fail it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from storage.readiness import readiness

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    """Answer 200 while the process serves requests."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Answer 200 when the database answers and its schema is current, else 503 saying which."""
    found = await readiness(request.app.state.engine)
    body = {"status": "ok" if found.ready else "error",
            "database": "ok" if found.database else "unreachable",
            "migrations": str(found.schema)}
    return JSONResponse(body, status_code=200 if found.ready else 503)
