"""Tests of ``accounts.sync``."""
