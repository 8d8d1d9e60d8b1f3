"""One module per command, as Django finds them: ``sync_users``, ``end_sessions``,
``oidc_check``, ``rotate_signing_key``, ``prune_audit_events``.

Each parses its arguments and calls one service of the packages below; none imports admin or
views.
"""
