"""Kept for compatibility: the session middleware now live in ``accounts.sessions.middleware``.

Settings files and code written against ``accounts.middleware`` keep working. New code imports
from ``accounts.sessions.middleware``.
"""

from accounts.sessions.middleware import OIDCSessionMiddleware

__all__ = ["OIDCSessionMiddleware"]
