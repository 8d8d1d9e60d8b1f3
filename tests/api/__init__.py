"""Tests of ``accounts.api``."""
