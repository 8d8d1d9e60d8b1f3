"""Tests of ``accounts.oidc``."""
