"""Tests of ``accounts.views``."""
