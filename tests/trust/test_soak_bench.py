"""The soak runs the real service in its own process and checks every message end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_loses_nothing_doubles_nothing_and_ends_in_json() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_DATABASE_URL",
                                                             "DATABASE_URL")}
    done = subprocess.run(  # noqa: S603  (our own bench, on its own SQLite file)
        [sys.executable, "-m", "bench.soak", "--rate", "6", "--seconds", "3", "--senders",
         "12", "--crisis-every", "5", "--json"], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["posted"] == figures["accepted"] == 18
    assert (figures["errors"], figures["lost"], figures["doubled"]) == (0, 0, 0), figures
    assert figures["drained"] is True
    assert figures["exit_code"] == 0  # SIGTERM: a clean stop
    assert figures["achieved_rate"] > 0
    assert 0 < figures["reply_p50_ms"] <= figures["reply_p99_ms"]
    assert figures["sms_reply_p50_ms"] > 0 and figures["telegram_reply_p50_ms"] > 0
    assert figures["crisis_reply_p50_ms"] > 0
    assert 0 < figures["peak_rss_mb"] < 1024
    assert figures["machine_ms"] > 0 and figures["machine_ms_after"] > 0


def test_the_soak_client_does_not_collect_while_it_measures() -> None:
    # Its full collections (120-200 ms by mid-run) held back the fake providers' stamps and
    # showed as the service's reply latency, at the same second of every run.
    import gc

    from bench.soak import no_collector_pauses

    with no_collector_pauses():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0  # what was there before is out of the collector's way
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
