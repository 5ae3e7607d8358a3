"""One turn of a conversation: who is talking, their state, and what to say back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.channels import traits
from handlers.textin import plain_letters
from handlers.types import EngineContext, Inbound, Reply
from storage.models import ChannelIdentity, ConversationState, Participant


@dataclass
class Conversation:
    """Everything a handler needs for one inbound message."""

    session: AsyncSession
    ctx: EngineContext
    inbound: Inbound
    participant: Participant
    identity: ChannelIdentity
    state: ConversationState
    scheduled: list[dict[str, Any]] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        """Return the time of this turn."""
        return self.ctx.now

    @property
    def channel(self) -> str:
        """Return the channel the person wrote on."""
        return self.inbound.channel

    @property
    def position(self) -> str:
        """Return where the person is, as "flow:step" ("menu:" between flows)."""
        return f"{self.state.flow}:{self.state.step}"

    def echo(self, text: str) -> str:
        """Return a name or the person's own words as this channel shows them cheaply."""
        return text if traits(self.channel).rich_text else plain_letters(text)

    @property
    def data(self) -> dict[str, Any]:
        """Return the flow's saved data (a fresh dict when empty)."""
        if self.state.data is None:
            self.state.data = {}
        return self.state.data

    def goto(self, flow: str, step: str = "", data: dict[str, Any] | None = None) -> None:
        """Move the person into a flow step, keeping or replacing its data."""
        self.state.flow = flow
        self.state.step = step
        if data is not None:
            keep = {k: v for k, v in self.data.items() if k.startswith("_")}
            self.state.data = {**keep, **data}
        self._touch()

    def update(self, **values: Any) -> None:
        """Change some of the flow's data."""
        self.state.data = {**self.data, **values}
        self._touch()

    def reset(self) -> None:
        """Leave any flow and return to the menu (keeping remembered searches)."""
        self.goto("menu", "", {})

    def _touch(self) -> None:
        self.state.updated_at = self.now
        self.session.add(self.state)


Handler = Callable[[Conversation, str], Awaitable[list[Reply]]]
