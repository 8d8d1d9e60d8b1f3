"""Tests of ``accounts.management``."""
