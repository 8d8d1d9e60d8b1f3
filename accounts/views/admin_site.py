"""The admin site: staff sign in through the provider; the password form is break-glass only."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from accounts.conf import oidc_settings
from accounts.oidc.authorization import safe_next_url
from accounts.sessions.stepup import admin_gate


class SSOAdminSite(AdminSite):
    # The product's name (templates/base.html names it too).
    site_header = "Acme Portal administration"
    site_title = "Acme Portal admin"
    index_title = "Administration"
    # The list pages need the width (audit log, sessions: 1280 px without scrolling); the
    # breadcrumbs and the index lead everywhere the sidebar did.
    enable_nav_sidebar = False

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Any:
        """Every admin page but login/logout: staff with a recent enough authentication."""
        inner = super().admin_view(view, cacheable)
        if view == self.logout:
            return inner  # signing out never asks for a fresh sign-in first

        @never_cache  # the step-up redirect carries a fresh state
        @wraps(view)
        def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if self.has_permission(request):
                response = admin_gate(request)
                if response is not None:
                    return response
            return inner(request, *args, **kwargs)

        return gated

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Offer "Sign in with SSO"; explain, without a redirect loop, when not staff."""
        next_url = safe_next_url(request, request.GET.get("next")) or reverse("admin:index")
        if request.user.is_authenticated:
            if request.user.is_active and request.user.is_staff:
                return HttpResponseRedirect(next_url)
            return render(request, "admin/not_staff.html", self.each_context(request), status=403)
        if oidc_settings.OIDC_ADMIN_PASSWORD_LOGIN and request.method == "POST":
            return super().login(request, extra_context)
        from accounts.views.chooser import (
            chooser_links,
            provider_sign_in_url,
            remembered_provider,
            several_providers,
        )

        remembered = remembered_provider(request) if several_providers() else None
        if remembered is not None and request.method == "GET":  # "remember my organisation"
            return HttpResponseRedirect(provider_sign_in_url(remembered.slug, next_url))
        providers = chooser_links(request, next_url, admin=True)
        context = {
            **self.each_context(request),
            "title": "Sign in",
            "providers": providers,
            "sso_url": f"{reverse('oidc_authentication_init')}?{urlencode({'next': next_url})}",
            "password_login": oidc_settings.OIDC_ADMIN_PASSWORD_LOGIN,
            "next": next_url,
            **(extra_context or {}),
        }
        if oidc_settings.OIDC_ADMIN_PASSWORD_LOGIN:
            from django.contrib.admin.forms import AdminAuthenticationForm

            context["form"] = AdminAuthenticationForm(request)
        return render(request, "admin/sso_login.html", context)

    def logout(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """The admin's "Log out" signs out at the provider too, like the site's button."""
        from accounts.views.logout import LogoutView

        return LogoutView.as_view()(request)
