"""Kept for compatibility: the API decorator and mixin now live in ``accounts.api.access``.

Settings files and code written against ``accounts.api_auth`` keep working. New code imports
from ``accounts.api.access``.
"""

from accounts.api.access import ApiViewMixin, api_view

__all__ = ["ApiViewMixin", "api_view"]
