"""A worker process for the multi-process crash test: `throughcare worker`'s dispatch loop,
with a lease the test can shorten.

`throughcare worker` has no option for the dispatch lease (two minutes, DispatchPolicy), so
a test that kills a worker and waits for its claims to run out starts this instead. It reads
the same settings (environment) and builds the same senders and shared limiter as
`throughcare worker` (`bot.serve`); only the policy and the loop's safety sweep differ.

    python -m tests.scheduler.mp_worker --lease 4 --safety 1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta

from bot.config import load_settings
from bot.runtime import open_engine, setup_logging
from bot.serve import build_limiter, build_senders
from scheduler.passes import DispatchPolicy
from scheduler.service import DispatchLoop

logger = logging.getLogger(__name__)


async def main(args: argparse.Namespace) -> None:
    """Run the dispatch loop until killed."""
    settings = load_settings()
    setup_logging(settings.log_level)
    engine = open_engine(settings)
    senders = build_senders(settings)
    limiter = build_limiter(settings, engine)
    loop = DispatchLoop(engine, senders, limiter=limiter, safety=args.safety,
                        policy=DispatchPolicy(lease=timedelta(seconds=args.lease)))
    await loop.start()
    logger.info("worker started (lease %ss, limiter store %s)", args.lease,
                type(limiter.store).__name__)
    try:
        await asyncio.Event().wait()
    finally:
        await loop.stop()
        for sender in senders.values():
            close = getattr(sender, "aclose", None)
            if close is not None:
                await close()
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lease", type=float, default=4.0)
    parser.add_argument("--safety", type=float, default=1.0)
    asyncio.run(main(parser.parse_args()))
