"""bench.fuzz, small: hostile signed requests to every webhook; no 5xx, nothing stuck."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.fuzz import fuzz, passed

REQUESTS = 200  # about 15 s on a busy machine; the bench itself sends 10,000


async def test_hostile_requests_get_no_5xx_and_leave_nothing_stuck(engine: AsyncEngine) -> None:
    """Every webhook gets hostile and ordinary cases; the database stays consistent."""
    figures = await fuzz(engine, requests=REQUESTS, seed=1)
    assert figures["requests"] == REQUESTS
    assert set(figures["by_webhook"]) == {"sms", "whatsapp", "status", "telegram"}
    assert figures["hostile"] > REQUESTS // 2 and figures["ordinary"] > 0
    assert figures["http_5xx"] == 0, figures["failing_examples"]
    assert figures["tracebacks"] == 0, figures["failing_examples"]
    assert figures["stuck_rows"] == 0, figures["stuck_examples"]
    assert figures["errors_logged"] == {}
    # The check had something to check: inbound answered, and some refused outright.
    assert figures["inbound_replied"] > 10
    assert any(code.endswith(("400", "403", "413")) for code in figures["status_codes"])
    assert passed(figures)
