"""The audit log in the admin: a read-only, filterable list and a summary page with a chart.

Rows are written only by ``accounts.audit.log`` and deleted only by ``prune_audit_events``:
nobody adds, edits or deletes one here, superusers included.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from accounts.admin.readonly import ReadOnlyAdminMixin
from accounts.audit.chart import summary_charts
from accounts.models import AuditEvent

SUMMARY_DAYS = 30


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "event",
        "outcome",
        "reason",
        "provider",
        "username",
        "subject",
        "ip_address",
        "count",
    )
    list_filter = (
        "event",
        "outcome",
        "provider",
        ("user", admin.RelatedOnlyFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("username", "subject", "issuer", "reason", "user_agent")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    fields = readonly_fields = (
        "created_at",
        "event",
        "outcome",
        "reason",
        "provider",
        "issuer",
        "subject",
        "user",
        "username",
        "ip_address",
        "user_agent",
        "count",
        "detail",
    )

    def get_urls(self):
        summary = self.admin_site.admin_view(self.summary_view)
        return [
            path("summary/", summary, name="accounts_auditevent_summary"),
            *super().get_urls(),
        ]

    def summary_view(self, request: HttpRequest) -> HttpResponse:
        """Sign-ins and refusals per day and provider over the last 30 days."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sign-ins and refusals, last {SUMMARY_DAYS} days",
            "opts": self.model._meta,
            "charts": summary_charts(SUMMARY_DAYS),
            "days": SUMMARY_DAYS,
        }
        return TemplateResponse(request, "admin/accounts/auditevent/summary.html", context)
