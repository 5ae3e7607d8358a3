"""The channel-agnostic conversation engine and the message texts."""
