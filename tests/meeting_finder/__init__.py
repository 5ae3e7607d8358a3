"""Tests of the meeting finder."""
