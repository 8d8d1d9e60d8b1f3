"""The audit log in the admin: a read-only, filterable list and a summary page with a chart.

Rows are written only by ``accounts.audit.log`` and deleted only by ``prune_audit_events``:
nobody adds, edits or deletes one here, superusers included.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from accounts.admin.providers import truncated
from accounts.admin.readonly import ReadOnlyAdminMixin
from accounts.audit.chart import NONE_LABEL, summary_charts
from accounts.models import AuditEvent

SUMMARY_DAYS = 30


class ProviderFilter(admin.SimpleListFilter):
    """By provider slug; events that concern no known provider are "(none)"."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        slugs = AuditEvent.objects.order_by().values_list("provider", flat=True).distinct()
        return [(slug or NO_PROVIDER_PARAM, slug or NONE_LABEL) for slug in sorted(set(slugs))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(provider="" if value == NO_PROVIDER_PARAM else value)


NO_PROVIDER_PARAM = "-"  # never a slug (SLUG_PATTERN: starts and ends with a letter or digit)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "event",
        "outcome",
        "reason_cut",
        "provider_label",
        "username_cut",
        "subject_cut",
        "ip_address",
        "count",
    )
    list_filter = (
        "event",
        "outcome",
        ProviderFilter,
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

    @admin.display(description="provider", ordering="provider")
    def provider_label(self, event: AuditEvent) -> str:
        return event.provider or NONE_LABEL

    @admin.display(description="reason", ordering="reason")
    def reason_cut(self, event: AuditEvent) -> str | None:
        return truncated(event.reason)

    @admin.display(description="username", ordering="username")
    def username_cut(self, event: AuditEvent) -> str | None:
        return truncated(event.username, short=True)

    @admin.display(description="subject", ordering="subject")
    def subject_cut(self, event: AuditEvent) -> str | None:
        return truncated(event.subject, short=True)

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
