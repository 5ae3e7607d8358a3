"""Channel adapters: one module per channel, plus rendering of replies."""
