"""What each channel can do, in one place: the engine asks these, never a channel's name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChannelTraits:
    """What a channel shows and how people use it."""

    buttons: bool  # choices are buttons; a number typed there is the person's own words
    location: bool  # can ask the person to share where they are
    rich_text: bool  # any letter and any length show as written (no SMS segment budget)
    address_is_phone: bool  # the address is the phone number a Champion enrolled
    answers_when_stopped: bool  # say "you are stopped" (SMS keeps quiet after STOP)
    other_channel: str  # how a LINK code names the channel to add
    # Discreet wording unless the person chose otherwise: a lock-screen preview of a text
    # we start never names recovery, drugs, prison or SMART.
    discreet_default: bool = False
    spoken: bool = False  # read out on a call (the voice line), not shown on a screen
    # Free-form messages only within a window after the person last wrote (WhatsApp's 24
    # hours): each inbound message is noted, and rows waiting for it are woken.
    reply_window: bool = False


SMS = ChannelTraits(buttons=False, location=False, rich_text=False, address_is_phone=True,
                    answers_when_stopped=False, other_channel="Telegram", discreet_default=True)
TELEGRAM = ChannelTraits(buttons=True, location=True, rich_text=True, address_is_phone=False,
                         answers_when_stopped=True, other_channel="a text message")
# WhatsApp through Twilio: the address is the phone number ("whatsapp:" off); plain API
# messages have no buttons, so choices are numbered as on SMS, but any letter and any
# length show as written. Discreet by default: its previews show on a lock screen too.
WHATSAPP = ChannelTraits(buttons=False, location=False, rich_text=True, address_is_phone=True,
                         answers_when_stopped=True, other_channel="Telegram or a text message",
                         discreet_default=True, reply_window=True)
# The staff simulator (bot.simulator): shown as the phone would show SMS or Telegram, but no
# sender serves these channels, so nothing written to them reaches a provider.
SIM_SMS = ChannelTraits(buttons=False, location=False, rich_text=False, address_is_phone=False,
                        answers_when_stopped=False, other_channel="Telegram",
                        discreet_default=True)
SIM_TELEGRAM = TELEGRAM
# The voice line (bot.channels.voice): keys pressed on a call; the address is the caller id.
VOICE = ChannelTraits(buttons=False, location=False, rich_text=False, address_is_phone=True,
                      answers_when_stopped=True, other_channel="a text message", spoken=True)
CHANNELS = {"sms": SMS, "telegram": TELEGRAM, "whatsapp": WHATSAPP, "sim_sms": SIM_SMS,
            "sim_telegram": SIM_TELEGRAM, "voice": VOICE}


def traits(channel: str) -> ChannelTraits:
    """Return what a channel can do (an unknown channel is treated as plain SMS)."""
    return CHANNELS.get(channel, SMS)
