"""The admin of identity providers: add, edit, switch off and test them, secrets write-only.

Providers of the ``OIDC_OP_*`` settings and of ``OIDC_PROVIDERS`` are listed read-only
above the admin's own, so an operator sees every provider in one place. A provider saved
here is used by every process within ``OIDC_PROVIDERS_RELOAD_INTERVAL`` seconds.

Adding, changing or deleting a provider needs a superuser: a provider decides who signs in
as whom, and who becomes staff or superuser. Staff with the model's permissions only view.
The form applies the system checks' rules of ``OIDC_PROVIDERS`` at save time, refuses an
issuer another provider has, and keeps endpoints typed by hand on the issuer's host unless
the audited "endpoints on another host" box is ticked.
"""

from __future__ import annotations

from contextvars import ContextVar

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.audit import log as audit
from accounts.conf import SUPPORTED_ALGORITHMS, as_list
from accounts.diagnostics import provider_check
from accounts.models import OIDCProvider, SignalStream
from accounts.providers.provider import (
    DEFAULT_SLUG,
    ENDPOINT_NAMES,
    SOURCE_DATABASE,
    cleartext_urls,
    foreign_host_endpoints,
    provider_build,
)
from accounts.providers.registry import declared_providers, issuer_owner, settings_provider

# The scheme and host of the request being served (the redirect URI is shown in full, for
# the operator to copy into the provider's console). Per request: admin instances are shared.
_site_root: ContextVar[str] = ContextVar("site_root", default="")


def truncated(value: object, *, short: bool = False) -> str | None:
    """A long value on one line, cut by CSS, the whole of it in the tooltip.

    Empty: None, which the admin shows as its empty value ("-"), as for a plain field.
    """
    text = "" if value is None else str(value)
    if not text:
        return None
    css = "truncate truncate-short" if short else "truncate"
    return format_html('<span class="{}" title="{}">{}</span>', css, text, text)


def _https_urls(db_field: models.Field, **kwargs):
    """Endpoint URLs typed without a scheme are https (Django 6's default, chosen now)."""
    if isinstance(db_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


class OIDCProviderForm(forms.ModelForm):
    """The client secret is write-only: shown as "set", replaced only when typed in."""

    client_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only, stored encrypted. Leave empty to keep the current secret.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["client_secret"]
        if self.instance.pk and self.instance.client_secret_encrypted:
            field.help_text = (
                "A secret is set (write-only, stored encrypted, never shown). Leave empty to "
                "keep it; type a new one to replace it."
            )
        else:
            field.help_text = (
                "Write-only, stored encrypted, never shown again. Not needed with private_key_jwt."
            )

    class Meta:
        model = OIDCProvider
        formfield_callback = _https_urls
        fields = (
            "slug", "label", "enabled", "email_domains", "issuer", "client_id",
            "token_auth_method", "scopes", "sign_algo", "discovery", "endpoints_other_host",
            "authorization_endpoint",
            "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
            "introspection_endpoint", "introspect", "opaque_token_prefix", "create_user",
            "link_by_email", "fetch_userinfo",
            "username_claim", "groups_claim", "groups_allowlist", "groups_prefix",
            "staff_groups", "superuser_groups", "trusted_audiences", "admin_max_auth_age",
            "admin_acr_values", "profile", "use_par", "dpop",
            "pushed_authorization_request_endpoint",
        )  # fmt: skip
        help_texts = {
            "slug": "Short name in URLs: lower-case letters, digits and hyphens. The redirect "
            "URI ends in /oidc/callback/&lt;slug&gt;/ (shown in full below once saved).",
        }

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        taken = {DEFAULT_SLUG} | {p.slug for p in declared_providers()}
        if slug in taken:
            raise forms.ValidationError(
                f"'{slug}' is the name of a provider declared in the settings; choose another."
            )
        return slug

    def clean_sign_algo(self) -> str:
        algorithms = as_list(self.cleaned_data["sign_algo"])
        bad = sorted(set(algorithms) - SUPPORTED_ALGORITHMS) or ([] if algorithms else ["(none)"])
        if bad:
            raise forms.ValidationError(
                f"Not accepted: {', '.join(bad)}. Use some of "
                f"{', '.join(sorted(SUPPORTED_ALGORITHMS))}."
            )
        return ", ".join(algorithms)

    def clean_issuer(self) -> str:
        issuer = self.cleaned_data["issuer"].strip()
        owner = issuer_owner(issuer, exclude=self.instance.slug or None)
        if owner is not None:
            raise forms.ValidationError(
                f"The provider '{owner.slug}' ({owner.source}) already has this issuer. An "
                "issuer belongs to exactly one provider: a second one could sign in as its "
                "users."
            )
        return issuer

    def clean_admin_max_auth_age(self) -> int:
        value = self.cleaned_data["admin_max_auth_age"]
        if not value or value <= 0:
            raise forms.ValidationError("Use a positive number of seconds.")
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        has_secret = bool(self.instance.client_secret_encrypted)
        has_secret = has_secret or bool(cleaned.get("client_secret"))
        needs_secret = cleaned.get("token_auth_method") != "private_key_jwt"
        if needs_secret and not has_secret:
            self.add_error("client_secret", "A new provider needs the client secret.")
        if any(a.startswith("HS") for a in as_list(cleaned.get("sign_algo"))) and not has_secret:
            self.add_error(
                "sign_algo", "An HMAC algorithm (HS*) is keyed with the client secret: set it."
            )
        if cleaned.get("profile") == "fapi2" and needs_secret:
            self.add_error(
                "token_auth_method", "FAPI 2.0 needs private_key_jwt: a client secret is refused."
            )
        discovery = cleaned.get("discovery")
        core = ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not discovery and not all(cleaned.get(name) for name in core):
            self.add_error(
                "discovery", "Without discovery, set the authorization, token and JWKS endpoints."
            )
        self._check_urls(cleaned)
        return cleaned

    def _check_urls(self, cleaned: dict) -> None:
        """https outside this machine with debug off (``accounts.E006``); endpoints at home."""
        urls = {name: cleaned.get(name) or "" for name in ("issuer", *ENDPOINT_NAMES)}
        for name in cleartext_urls(urls, debug=settings.DEBUG):
            if name not in self.errors:
                self.add_error(
                    name,
                    "Use https://: with debug off, http:// is only for this machine "
                    "(tokens and codes must not cross a network in clear text).",
                )
        if cleaned.get("endpoints_other_host") or not cleaned.get("issuer"):
            return
        endpoints = {name: urls[name] for name in ENDPOINT_NAMES}
        for name in foreign_host_endpoints(urls["issuer"], endpoints):
            if name not in self.errors:
                self.add_error(
                    name,
                    "This endpoint is not on the issuer's host. Leave it empty to read it from "
                    'discovery, or tick "endpoints on another host" if the provider really '
                    "serves it there.",
                )

    def save(self, commit: bool = True) -> OIDCProvider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("client_secret"):
            provider.set_client_secret(self.cleaned_data["client_secret"])
        if commit:
            provider.save()
        return provider


@admin.register(OIDCProvider)
class OIDCProviderAdmin(admin.ModelAdmin):
    form = OIDCProviderForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("label", "slug", "enabled", "issuer_cut", "client_id_cut", "email_domains")
    list_filter = ("enabled",)
    search_fields = ("slug", "label", "issuer", "client_id", "email_domains")
    readonly_fields = ("redirect_uri", "created_at", "updated_at")
    actions = ["test_providers", "disable_providers"]
    change_list_template = "admin/accounts/oidcprovider/change_list.html"
    fieldsets = (
        (None, {"fields": ("slug", "label", "enabled", "email_domains", "redirect_uri")}),
        (
            "Provider and client",
            {
                "fields": (
                    "issuer",
                    "client_id",
                    "client_secret",
                    "token_auth_method",
                    "scopes",
                    "sign_algo",
                    "discovery",
                    "endpoints_other_host",
                )
            },
        ),
        (
            "Endpoints (only without discovery, or to override it)",
            {
                "classes": ("collapse",),
                "fields": ENDPOINT_NAMES,
            },
        ),
        (
            "Users and claims",
            {
                "fields": (
                    "create_user",
                    "link_by_email",
                    "fetch_userinfo",
                    "username_claim",
                    "groups_claim",
                    "groups_allowlist",
                    "groups_prefix",
                    "staff_groups",
                    "superuser_groups",
                    "trusted_audiences",
                )
            },
        ),
        ("Opaque bearer tokens", {"fields": ("introspect", "opaque_token_prefix")}),
        ("Admin step-up", {"fields": ("admin_max_auth_age", "admin_acr_values")}),
        ("FAPI 2.0, PAR and DPoP", {"fields": ("profile", "use_par", "dpop")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request: HttpRequest, obj: OIDCProvider, form, change: bool) -> None:
        """Save, then one audit row: added, changed (which fields), or switched off."""
        was_enabled = (
            OIDCProvider.objects.filter(pk=obj.pk).values_list("enabled", flat=True).first()
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        if not change:
            event = audit.PROVIDER_ADDED
        elif was_enabled and not obj.enabled:
            event = audit.PROVIDER_DISABLED
        else:
            event = audit.PROVIDER_CHANGED
        reason = "endpoints_other_host" if obj.endpoints_other_host else ""
        # names, never values
        _audit(request, obj, event, reason=reason, fields=sorted(form.changed_data))

    # A provider decides who signs in as whom (and who becomes superuser): superusers only.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: OIDCProvider | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: OIDCProvider | None = None) -> bool:
        return request.user.is_superuser

    def get_fieldsets(self, request: HttpRequest, obj: OIDCProvider | None = None):
        """Read-only viewers get no ``client_secret`` row: read-only it would show the secret."""
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "client_secret"]})
            for name, options in fieldsets
        ]

    def delete_model(self, request: HttpRequest, obj: OIDCProvider) -> None:
        super().delete_model(request, obj)
        _audit(request, obj, audit.PROVIDER_DISABLED, reason="deleted")

    class Media:
        js = ("sso-admin-copy.js",)  # the copy button; a static file, never inline

    def get_form(self, request: HttpRequest, obj: OIDCProvider | None = None, **kwargs):
        _site_root.set(request.build_absolute_uri("/").rstrip("/"))
        return super().get_form(request, obj, **kwargs)

    @admin.display(description="redirect URI to register at the provider")
    def redirect_uri(self, obj: OIDCProvider) -> str:
        if not obj.slug:
            return "Shown once the provider is saved: /oidc/callback/<slug>/ on this site."
        uri = f"{_site_root.get()}/oidc/callback/{obj.slug}/"
        return format_html(
            '<span class="redirect-uri"><code id="redirect-uri">{}</code>'
            '<button type="button" class="button" data-copy="{}" '
            'aria-describedby="copy-status">Copy</button>'
            '<span id="copy-status" class="copy-status" role="status"></span></span>',
            uri,
            uri,
        )

    @admin.display(description="issuer", ordering="issuer")
    def issuer_cut(self, obj: OIDCProvider) -> str | None:
        return truncated(obj.issuer)

    @admin.display(description="client id", ordering="client_id")
    def client_id_cut(self, obj: OIDCProvider) -> str | None:
        return truncated(obj.client_id, short=True)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        default = settings_provider()
        declared = ([default] if default.issuer else []) + declared_providers()
        context = {
            "declared_providers": declared,
            "signal_streams": SignalStream.objects.order_by("provider"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    @admin.action(description="Test the selected providers (discovery, keys, client)")
    def test_providers(self, request: HttpRequest, queryset: QuerySet) -> None:
        for row in queryset:
            provider = provider_build(row.slug, row.values(), source=SOURCE_DATABASE)
            results = provider_check(provider, client_credentials=True)
            failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
            if failed:
                self.message_user(
                    request,
                    f"Provider {row.slug}: {len(failed)} failed: " + "; ".join(failed),
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    f"Provider {row.slug}: all {len(results)} checks passed.",
                    messages.SUCCESS,
                )

    @admin.action(
        description="Switch off the selected providers (no new sign-ins)", permissions=["change"]
    )
    def disable_providers(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for row in queryset.filter(enabled=True):
            row.enabled = False
            row.save(update_fields=["enabled", "updated_at"])
            _audit(request, row, audit.PROVIDER_DISABLED)
            count += 1
        self.message_user(request, f"Switched off {count} provider(s).", messages.SUCCESS)


def _audit(
    request: HttpRequest,
    row: OIDCProvider,
    event: str,
    *,
    reason: str = "",
    fields: list[str] | None = None,
) -> None:
    audit.record(
        event,
        audit.SUCCESS,
        request=request,
        reason=reason,
        provider=row.slug,
        issuer=row.issuer,
        user=request.user,
        detail={"fields": fields} if fields else None,
    )
