"""The soak's rig: `throughcare run` in its own process, fake providers served on loopback.

The service is started as an operator starts it (`throughcare run`: uvicorn, the webhooks,
the worker's dispatcher and scheduler, in one process), configured by environment to reach
a fake Twilio and a fake Telegram Bot API that this process serves with uvicorn on loopback.
Everything the fakes receive is stamped with this process's clock, so "inbound posted" and
"reply handed to the provider" are read off one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from storage import crypto
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
OUR_NUMBER = "+447700900001"
BOT_TOKEN = "123456:" + "A" * 35
WEBHOOK_SECRET = "soak-secret-" + "x" * 20


def free_port() -> int:
    """Return a loopback port nobody is listening on just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stamps:
    """When each message reached a fake provider (perf_counter), by provider id."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def note(self, provider_id: str) -> None:
        """Record one arrival (a provider id seen twice is a doubled send)."""
        self.at.setdefault(provider_id, time.perf_counter())
        self.count[provider_id] = self.count.get(provider_id, 0) + 1


class StampedMessages(list[dict[str, Any]]):
    """The fake Twilio's record of sends, stamping each as it arrives."""

    def __init__(self, stamps: Stamps) -> None:
        super().__init__()
        self.stamps = stamps

    def append(self, item: dict[str, Any]) -> None:
        """Stamp, then record."""
        self.stamps.note(str(item["sid"]))
        super().append(item)


def stamp_telegram(fake: FakeTelegram, stamps: Stamps) -> None:
    """Make the fake Bot API stamp every message it accepts, as `chat:message_id`."""
    accept = fake._api_sendMessage

    async def stamped(params: dict[str, Any]) -> dict[str, Any]:
        body = await accept(params)
        if body.get("ok"):
            result = body["result"]
            stamps.note(f"{result['chat']['id']}:{result['message_id']}")
        return body

    fake._api_sendMessage = stamped  # type: ignore[method-assign]


@dataclass
class Service:
    """The running service, the fakes it talks to, and a client that posts to it."""

    url: str
    process: subprocess.Popen[bytes]
    twilio: FakeTwilio
    telegram: FakeTelegram
    stamps: Stamps
    client: httpx.AsyncClient
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = field(default_factory=list)
    log: Path | None = None
    rss_peak_kb: int = 0

    def cpu_seconds(self) -> float:
        """Return the CPU time the service has used (user and system), in seconds."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        """Return the service's resident memory now, in kB (0 once it has gone)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        line = next((ln for ln in status.splitlines() if ln.startswith("VmRSS:")), "")
        return int(line.split()[1]) if line else 0

    async def watch_memory(self, every: float = 0.25) -> None:
        """Keep the peak resident memory seen, until cancelled."""
        while True:
            self.rss_peak_kb = max(self.rss_peak_kb, self.rss_kb())
            await asyncio.sleep(every)


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            return server, task
        await asyncio.sleep(0.025)
    raise RuntimeError("a fake provider did not start")


def service_env(url: str, base: str, twilio_port: int, telegram_port: int, *,
                mps: float, keys: tuple[str, str]) -> dict[str, str]:
    """Return the environment `throughcare run` is started with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))}
    env.update({
        "DATABASE_URL": url, "PUBLIC_BASE_URL": base,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": OUR_NUMBER, "TWILIO_MPS": str(mps), "TELEGRAM_MPS": str(mps),
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio_port}",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{telegram_port}",
        "DATA_KEY": keys[0], "BLIND_KEY": keys[1], "TWILIO_REDACT_BODIES": "false",
        "LOG_LEVEL": "WARNING",
    })
    return env


def install_keys() -> tuple[str, str]:
    """Make fresh keys, use them here (seeding) and hand them to the service."""
    keys = (crypto.new_secret(), crypto.new_secret())
    crypto.install(crypto.keyring_from(*keys))
    return keys


def launch(arguments: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Start `throughcare ARGUMENTS` with its output in a new log file."""
    log = Path(tempfile.mkstemp(prefix="tc-soak-", suffix=".log")[1])
    command = [str(Path(sys.executable).with_name("throughcare")), *arguments]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out,  # noqa: S603  (ours)
                                   stderr=subprocess.STDOUT)
    return process, log


async def start_service(url: str, *, keys: tuple[str, str], mps: float, connections: int
                        ) -> Service:
    """Serve the fakes, start `throughcare run` against them, wait until it answers.

    Telegram's webhook is not registered (that needs https); updates are posted to the
    webhook route as Telegram posts them, with the secret header.
    """
    port, twilio_port, telegram_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    stamps = Stamps()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{base}/sms/inbound",
                        our_number=OUR_NUMBER, messages=StampedMessages(stamps))
    telegram = FakeTelegram(BOT_TOKEN)
    stamp_telegram(telegram, stamps)
    servers = [await _serve(twilio.app, twilio_port), await _serve(telegram.app, telegram_port)]
    env = service_env(url, base, twilio_port, telegram_port, mps=mps, keys=keys)
    process, log = launch(["run", "--host", "127.0.0.1", "--port", str(port)], env)
    client = httpx.AsyncClient(base_url=base, timeout=30,
                               limits=httpx.Limits(max_connections=connections))
    twilio.client = client
    service = Service(base, process, twilio, telegram, stamps, client, servers, log)
    try:
        await _wait_ready(service)
    except BaseException:
        await stop_service(service, grace=2.0)
        raise
    return service


async def _wait_ready(service: Service, limit: float = 60.0) -> None:
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"the service exited: see {service.log}")
        with contextlib.suppress(httpx.HTTPError):
            ready = (await service.client.get("/healthz")).status_code == 200
            if ready and service.telegram.called("getMe"):
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the service did not become ready: see {service.log}")


async def stop_service(service: Service, *, grace: float = 20.0) -> int | None:
    """Ask the service to stop (SIGTERM), then stop the fakes; return its exit code."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(service.process.wait, grace)
        except subprocess.TimeoutExpired:
            service.process.kill()
    code = service.process.wait()
    await service.client.aclose()
    for server, task in service.servers:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return code
