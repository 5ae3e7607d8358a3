"""Fixtures for the sealing tests: the people of the handler tests."""

from tests.handlers.conftest import make_person  # noqa: F401  (a fixture, used by name)
