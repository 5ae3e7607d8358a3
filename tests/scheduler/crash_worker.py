"""A worker process for the crash test: dispatch until nothing is queued or in flight."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime, timedelta

from sqlmodel import col, func, select

from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from storage.db import make_engine, session_scope
from storage.models import OutboundMessage, OutboxStatus
from tests.scheduler.fake_provider import HttpSender


async def main(args: argparse.Namespace) -> None:
    """Loop the real dispatcher until the outbox is settled."""
    engine = make_engine(args.db)
    base, epoch = datetime.fromisoformat(args.base), float(args.epoch)

    def now() -> datetime:
        return base + timedelta(seconds=time.time() - epoch)

    sender = HttpSender(args.fake)
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=args.rate)})
    # One call at a time: the loopback fake is a simple threaded server.
    policy = DispatchPolicy(lease=timedelta(seconds=args.lease), concurrency=1)
    try:
        while True:
            stats = await dispatch(engine, {"sms": sender}, now=now(), limiter=limiter,
                                   policy=policy, limit=100)
            if stats.errors:
                sys.stderr.write(f"send errors: {stats.errors}\n")
            async with session_scope(engine) as session:
                left = (await session.exec(
                    select(func.count()).select_from(OutboundMessage).where(
                        col(OutboundMessage.status).in_(
                            [OutboxStatus.QUEUED, OutboxStatus.SENDING])))).one()
            if not left:
                return
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("db", "fake", "base", "epoch"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--lease", type=float, default=1.0)
    asyncio.run(main(parser.parse_args()))
