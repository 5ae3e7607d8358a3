"""Time: the worker, reminder and follow-up planning, and the outbox dispatcher."""
