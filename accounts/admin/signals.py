"""The Shared Signals streams in the admin: each provider's stream, its status and last event.

Read-only: streams are created and changed with ``manage.py ssf_stream`` and updated by the
events received. The push ``Authorization`` value is never shown, only whether it is set.
"""

from __future__ import annotations

from django.contrib import admin

from accounts.admin.readonly import ReadOnlyAdminMixin
from accounts.models import SignalStream


@admin.register(SignalStream)
class SignalStreamAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "provider",
        "delivery",
        "status",
        "stream_id",
        "events_received",
        "last_event_type",
        "last_event_at",
        "last_verification_at",
    )
    list_filter = ("delivery", "status")
    search_fields = ("provider", "stream_id")
    fields = (
        "provider",
        "stream_id",
        "delivery",
        "status",
        "poll_endpoint",
        "authorization_status",
        "events_delivered",
        "events_received",
        "last_event_type",
        "last_event_at",
        "last_verification_at",
        "last_verification_state",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="push Authorization")
    def authorization_status(self, obj: SignalStream) -> str:
        return "set (stored encrypted)" if obj.authorization_encrypted else "not set"
