"""A mixin for admin pages that operators may only look at."""

from __future__ import annotations

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """What operators may only look at: no add, change or delete in the admin."""

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
