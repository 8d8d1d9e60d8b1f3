"""Tests of ``accounts.admin``."""
