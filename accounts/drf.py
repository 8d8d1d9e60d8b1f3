"""Kept for compatibility: the Django REST framework classes now live in ``accounts.api.drf``.

Settings files and code written against ``accounts.drf`` keep working. New code imports
from ``accounts.api.drf``.
"""

from accounts.api.drf import ApiAccess, BearerAuthentication

__all__ = ["ApiAccess", "BearerAuthentication"]
