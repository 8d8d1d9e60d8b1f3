"""The admin of users, their provider identities and their OIDC sessions.

The site object is ``accounts.views.admin_site.SSOAdminSite`` (installed as the default site by
``accounts.apps.SSOAdminConfig``), so ``admin.site`` and ``@admin.register`` work as usual.
Tokens are secrets: no page of this admin shows the ID, access or refresh token.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin.providers import truncated
from accounts.admin.readonly import ReadOnlyAdminMixin
from accounts.models import OIDCIdentity, OIDCSession
from accounts.sessions import lifecycle as sessions

User = get_user_model()

IDENTITY_FIELDS = ("issuer", "subject", "email", "created_at", "last_login_at", "last_synced_at")


class OIDCIdentityInline(admin.TabularInline):
    """The user's accounts at the provider, read-only.

    Identities are created and updated only by sign-in and user sync, from the provider's
    claims: nobody adds or edits one here. can_delete is False too: on the user's change
    form a "delete" tick box next to every save would make unlinking an identity too easy
    to do by accident, and an unlinked (issuer, subject) signs in next time as a new user.
    Unlinking stays possible, on purpose, from the identity's own admin page (the change
    link below), behind Django's delete confirmation.
    """

    model = OIDCIdentity
    fields = IDENTITY_FIELDS
    readonly_fields = IDENTITY_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = "linked identity"
    verbose_name_plural = "Linked identities (from the identity provider)"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class IdentityIssuerFilter(admin.SimpleListFilter):
    """Users by the issuer of their linked identities, or users without any."""

    title = "identity issuer"
    parameter_name = "issuer"
    NONE = "__none__"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        issuers = (
            OIDCIdentity.objects.order_by("issuer").values_list("issuer", flat=True).distinct()
        )
        return [*((issuer, issuer) for issuer in issuers), (self.NONE, "No linked identity")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value == self.NONE:
            return queryset.filter(oidc_identities__isnull=True)
        return queryset.filter(oidc_identities__issuer=value).distinct()


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [*DjangoUserAdmin.inlines, OIDCIdentityInline]
    list_filter = ("is_staff", "is_superuser", "is_active", "groups", IdentityIssuerFilter)
    search_fields = (*DjangoUserAdmin.search_fields, "oidc_identities__subject")
    actions = ["end_sessions"]

    @admin.action(
        description="End all sessions of the selected users",
        permissions=["change"],
    )
    def end_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        user_ids = list(queryset.values_list("pk", flat=True))
        ended = sessions.end_user_sessions(
            user_ids, request=request, by=f"admin: {request.user.get_username()}"
        )
        self.message_user(
            request,
            f"Ended {ended} session{'' if ended == 1 else 's'} of {len(user_ids)} "
            f"user{'' if len(user_ids) == 1 else 's'}.",
            messages.SUCCESS,
        )


@admin.register(OIDCIdentity)
class OIDCIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "issuer", "subject", "email", "last_login_at")
    list_filter = ("issuer",)
    search_fields = ("subject", "email", "user__username")
    list_select_related = ("user",)
    readonly_fields = IDENTITY_FIELDS
    raw_id_fields = ("user",)
    date_hierarchy = "last_login_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # identities come from sign-in and sync, never by hand


@admin.register(OIDCSession)
class OIDCSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: sessions are made by sign-in and ended by logout or the users' action."""

    list_display = (
        "user",
        "provider",
        "issuer_cut",
        "sid_cut",
        "created_at",
        "access_expires_at",
        "refreshed_at",
    )
    list_filter = ("provider", "issuer")
    search_fields = ("user__username", "subject", "sid")
    list_select_related = ("user",)
    # Never the tokens; nor the session key, which would let its reader take the session.
    exclude = ("id_token", "access_token", "refresh_token", "session_key")
    fields = readonly_fields = (
        "user",
        "provider",
        "issuer",
        "subject",
        "sid",
        "created_at",
        "access_expires_at",
        "refreshed_at",
        "provider_unreachable_since",
        "ip_address",
        "user_agent",
    )

    @admin.display(description="issuer", ordering="issuer")
    def issuer_cut(self, row: OIDCSession) -> str | None:
        return truncated(row.issuer)

    @admin.display(description="sid", ordering="sid")
    def sid_cut(self, row: OIDCSession) -> str | None:
        return truncated(row.sid, short=True)

    # The provider's sid ends a session by front-channel logout: superusers only see it.
    def get_list_display(self, request: HttpRequest):
        return _without_sid(super().get_list_display(request), request)

    def get_search_fields(self, request: HttpRequest):
        return _without_sid(super().get_search_fields(request), request)

    def get_fields(self, request: HttpRequest, obj=None):
        return _without_sid(super().get_fields(request, obj), request)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return _without_sid(super().get_readonly_fields(request, obj), request)


def _without_sid(names, request: HttpRequest):
    """The field names, without ``sid`` unless the user is a superuser."""
    if request.user.is_superuser:
        return names
    return tuple(name for name in names if name not in ("sid", "sid_cut"))
