"""Tests of ``accounts.audit``."""
