"""Choosing a provider: by slug, by work email, the last one used, and a remembered one.

With one provider (the provider ``default``) a sign-in that names none goes straight to it.
With several, it goes to the sign-in page (the chooser) with ``next`` kept, unless this
browser asked to remember its organisation: then straight to that provider. Two cookies,
neither saying anything about the person: the last provider used orders the buttons; the
remembered one (set only when the user ticks "remember my organisation", cleared from the
chooser) skips the chooser.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

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
# Only a provider's slug: a sign-in that names no provider goes straight to it.
REMEMBER_PROVIDER_COOKIE = "oidc_remember_provider"
LAST_PROVIDER_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie (RFC 6265bis)


class NoProviderForEmail(OIDCError):
    code = "no_provider_for_email"
    message = (
        "No identity provider of this site handles that email address. Check it, or choose "
        "your organisation's button below."
    )
    status = 404


def several_providers() -> bool:
    """Whether people choose among providers (more than one is switched on)."""
    return len(enabled_providers()) > 1


def remembered_provider(request: HttpRequest) -> Provider | None:
    """The enabled provider this browser asked to remember, if any (and if choice exists)."""
    slug = request.COOKIES.get(REMEMBER_PROVIDER_COOKIE)
    if not slug:
        return None
    return next((p for p in enabled_providers() if p.slug == slug), None)


def sign_in_target(request: HttpRequest) -> tuple[Provider | None, str | None]:
    """The provider a sign-in request asks for, and the ``login_hint`` to pass on.

    ``?provider=<slug>`` wins; then ``?email=`` routed by email domains. Naming neither:
    with several providers the remembered one, else None (show the chooser); with one, the
    provider ``default`` when it is configured (None: show the sign-in page).
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
    if several_providers():
        return remembered_provider(request), None
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


def _set_cookie(request: HttpRequest, response: HttpResponse, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=LAST_PROVIDER_MAX_AGE,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def remember_provider(
    request: HttpRequest, response: HttpResponse, provider: Provider, *, remember: bool = False
) -> None:
    """After a sign-in: the last provider used; and the remembered one when it was asked for."""
    _set_cookie(request, response, LAST_PROVIDER_COOKIE, provider.slug)
    if remember:
        _set_cookie(request, response, REMEMBER_PROVIDER_COOKIE, provider.slug)


def forget_provider(response: HttpResponse) -> None:
    """Clear "remember my organisation": sign-ins show the chooser again."""
    response.delete_cookie(REMEMBER_PROVIDER_COOKIE, samesite="Lax")


def chooser_url(next_url: str | None) -> str:
    """The sign-in page (the chooser), keeping ``next``."""
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    return reverse("signin") + query


def provider_sign_in_url(slug: str | None, next_url: str | None) -> str:
    """``/oidc/authenticate/`` at this provider (None: let the site decide), keeping ``next``."""
    params = {"provider": slug} if slug else {}
    if next_url:
        params["next"] = next_url
    base = reverse("oidc_authentication_init")
    return f"{base}?{urlencode(params)}" if params else base


def chooser_links(request: HttpRequest, next_url: str | None, *, admin: bool = False) -> list:
    """One sign-in link per enabled provider (last used first), for the sign-in pages.

    With one provider its link is ``/oidc/authenticate/?next=...`` as it always was; with
    several every link names its provider, since a sign-in naming none shows the chooser.
    """
    base = reverse("oidc_authentication_init")
    last = request.COOKIES.get(LAST_PROVIDER_COOKIE)
    providers = chooser_providers(request)
    links = []
    for provider in providers:
        named = len(providers) > 1 or not provider.is_default
        params = {"provider": provider.slug} if named else {}
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
