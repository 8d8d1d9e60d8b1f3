"""Tests of ``accounts.providers``."""
