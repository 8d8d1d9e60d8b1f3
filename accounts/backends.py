"""Kept for compatibility: the authentication backend now live in ``accounts.users.backend``.

Settings files and code written against ``accounts.backends`` keep working. New code imports
from ``accounts.users.backend``.

This path is also the one stored in every signed-in session (``_auth_user_backend``), so
``AUTHENTICATION_BACKENDS`` keeps naming it: changing it would sign everybody out.
"""

from accounts.users.backend import OIDCBackend

__all__ = ["OIDCBackend"]
