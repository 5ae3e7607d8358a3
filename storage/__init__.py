"""Storage: sqlmodel tables, the async engine and sessions, and the queries the core needs."""
