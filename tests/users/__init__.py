"""Tests of ``accounts.users``."""
