"""Choosing a provider: by slug, by work email, and the last one this browser used."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse

from accounts.errors import OIDCError
from accounts.providers.provider import Provider
from accounts.providers.registry import (
    UnknownProvider,
    default_provider,
    enabled_providers,
    provider_get,
)

# Only a provider's slug, never anything about the person: it orders the buttons.
LAST_PROVIDER_COOKIE = "oidc_last_provider"
LAST_PROVIDER_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie (RFC 6265bis)


class NoProviderForEmail(OIDCError):
    code = "no_provider_for_email"
    message = (
        "No identity provider of this site handles that email address. Check it, or choose "
        "your organisation's button."
    )
    status = 404


def sign_in_target(request: HttpRequest) -> tuple[Provider | None, str | None]:
    """The provider a sign-in request asks for, and the ``login_hint`` to pass on.

    ``?provider=<slug>`` wins; then ``?email=`` routed by email domains; else the provider
    ``default`` when it is configured (None: show the sign-in page).
    """
    slug = request.GET.get("provider")
    email = (request.GET.get("email") or "").strip()
    if slug is not None:
        return provider_get(slug), email or None
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise NoProviderForEmail("invalid_email", "That is not an email address.") from exc
        for provider in enabled_providers():
            if provider.handles_email(email):
                return provider, email
        raise NoProviderForEmail()
    default = default_provider()
    try:
        return provider_get(default.slug), None
    except UnknownProvider:
        return None, None


def chooser_providers(request: HttpRequest) -> list[Provider]:
    """The enabled providers for the buttons, the one this browser used last first."""
    providers = enabled_providers()
    last = request.COOKIES.get(LAST_PROVIDER_COOKIE)
    return sorted(providers, key=lambda provider: provider.slug != last)


def remember_provider(request: HttpRequest, response: HttpResponse, provider: Provider) -> None:
    response.set_cookie(
        LAST_PROVIDER_COOKIE,
        provider.slug,
        max_age=LAST_PROVIDER_MAX_AGE,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def chooser_links(request: HttpRequest, next_url: str | None, *, admin: bool = False) -> list:
    """One sign-in link per enabled provider (last used first), for the sign-in pages.

    The default provider's link is ``/oidc/authenticate/?next=...`` as it always was.
    """
    from urllib.parse import quote, urlencode

    from django.urls import reverse

    base = reverse("oidc_authentication_init")
    last = request.COOKIES.get(LAST_PROVIDER_COOKIE)
    links = []
    for provider in chooser_providers(request):
        params = {} if provider.is_default else {"provider": provider.slug}
        if next_url:
            params["next"] = next_url
        if admin:
            query = urlencode(params)
        else:
            query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items())
        links.append(
            {
                "slug": provider.slug,
                "name": provider.display_name,
                "url": f"{base}?{query}" if query else base,
                "last": provider.slug == last,
            }
        )
    return links
