"""Tests of ``accounts.security``."""
