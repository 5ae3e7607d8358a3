"""The edges and the wiring: config, channel adapters, the web app and the CLI."""
