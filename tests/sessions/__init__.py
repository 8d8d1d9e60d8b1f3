"""Tests of ``accounts.sessions``."""
