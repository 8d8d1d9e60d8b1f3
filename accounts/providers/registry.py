"""The provider registry every module asks: which providers exist, found by slug, issuer or email.

Providers come from three places: the ``OIDC_OP_*``/``OIDC_RP_*`` settings (the provider
``default``, exactly as before there were several), the ``OIDC_PROVIDERS`` setting, and the
``OIDCProvider`` rows operators edit in the admin. A process keeps the admin's providers in
memory and checks a version stamp of the table (row count and newest change) at most every
``OIDC_PROVIDERS_RELOAD_INTERVAL`` seconds, so a provider added, changed or disabled in the
admin is used by every process within seconds, with one small query per interval; a save in
this process is seen at once. Declared providers win over a database row of the same slug.
The resulting list is built once and kept until the admin's rows or a setting change (every
request asks for it: the CSP header, sign-in, bearer tokens).

One issuer, one provider: the first provider to name an issuer (``default``, then
``OIDC_PROVIDERS`` in order, then the admin's rows oldest first) owns it, and a later one
naming the same issuer is left out with an error in the log (the system checks and the
admin's form refuse it before that).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from django.db import DatabaseError
from django.db.models import Count, Max

from accounts import metrics
from accounts.conf import DEFAULTS, oidc_settings
from accounts.errors import OIDCError
from accounts.providers.provider import (
    DEFAULT_SLUG,
    SOURCE_DATABASE,
    SOURCE_ENV,
    SOURCE_SETTINGS,
    Provider,
    declaration_problems,
    provider_build,
)

logger = logging.getLogger("accounts.providers")


class UnknownProvider(OIDCError):
    code = "unknown_provider"
    message = "This site has no identity provider of that name, or it is switched off."
    status = 404


class _DatabaseProviders:
    """The admin's providers, as of the last version stamp seen by this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        self.stamp: Any = None
        self.checked_at = 0.0
        self.providers: list[Provider] = []

    def current(self) -> list[Provider]:
        with self.lock:
            now = time.monotonic()
            if self.stamp is None or now - self.checked_at >= _interval():
                self._reload_if_changed()
                self.checked_at = now
            return self.providers

    def _reload_if_changed(self) -> None:
        from accounts.models import OIDCProvider

        try:
            stamp = OIDCProvider.objects.aggregate(n=Count("pk"), t=Max("updated_at"))
            if stamp == self.stamp:
                return
            rows = list(OIDCProvider.objects.order_by("pk"))
        except (DatabaseError, RuntimeError):  # before migrate, database down, or no access
            logger.warning("provider table unreadable: using the declared providers only")
            return
        self.providers = [p for p in map(_from_row, rows) if p is not None]
        self.stamp = stamp


def _interval() -> float:
    return float(oidc_settings.OIDC_PROVIDERS_RELOAD_INTERVAL)


def _from_row(row: Any) -> Provider | None:
    from accounts.security.crypto import DecryptionError

    try:
        values = row.values()
    except DecryptionError:
        logger.error(
            "provider %s skipped: its client secret cannot be decrypted with SECRET_KEY or "
            "SECRET_KEY_FALLBACKS; enter it again in the admin",
            row.slug,
        )
        return None
    return provider_build(row.slug, values, source=SOURCE_DATABASE)


_database = _DatabaseProviders()


class _Built:
    """The providers as last built: reused while settings and the admin's rows are the same."""

    generation = 0  # bumped by ``registry_forget``: a setting or a row changed
    # (generation, the admin's providers, the result): one tuple, swapped whole (threads).
    state: tuple[int, list[Provider] | None, tuple[Provider, ...]] = (-1, None, ())


def registry_forget() -> None:
    """Drop what this process remembers (settings changed, a row saved, tests)."""
    _database.forget()
    _Built.generation += 1


def settings_provider() -> Provider:
    """The provider of the ``OIDC_OP_*`` settings, configured or not (``default``)."""
    return provider_build(
        DEFAULT_SLUG, oidc_settings.default_provider_settings(), source=SOURCE_SETTINGS
    )


def declared_providers() -> list[Provider]:
    """The providers of ``OIDC_PROVIDERS`` that are well formed (the checks name the others)."""
    declared = oidc_settings.OIDC_PROVIDERS or {}
    if not isinstance(declared, dict):
        return []
    return [
        provider_build(slug, values, source=SOURCE_ENV)
        for slug, values in declared.items()
        if not declaration_problems(slug, values)
    ]


def issuer_key(issuer: str) -> str:
    """An issuer compared loosely (scheme and host case, a trailing slash): one owner each."""
    parts = urlsplit(str(issuer).strip())
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}" if parts.netloc else path


def all_providers() -> list[Provider]:
    """Every provider, enabled or not: default first, then declared, then the admin's.

    A provider whose slug or issuer an earlier one already has is left out: one issuer
    belongs to one provider, or a provider's admin could sign in as anybody of another.
    """
    database = _database.current()
    generation = _Built.generation
    built, built_from, found = _Built.state
    if built != generation or built_from is not database:
        found = tuple(_build_all(database))
        _Built.state = (generation, database, found)
    return list(found)


def _build_all(database: list[Provider]) -> list[Provider]:
    default = settings_provider()
    candidates = [default] if (default.issuer or default.client_id) else []
    candidates += declared_providers()
    declared_slugs = {p.slug for p in candidates} | {DEFAULT_SLUG}
    found: list[Provider] = []
    owners: dict[str, str] = {}
    for provider in candidates + database:
        if provider.source == SOURCE_DATABASE and provider.slug in declared_slugs:
            logger.warning(
                "admin provider %s ignored: a declared provider has its name", provider.slug
            )
            continue
        owner = owners.setdefault(issuer_key(provider.issuer), provider.slug)
        if provider.issuer and owner != provider.slug:
            logger.error(
                "provider %s ignored: its issuer belongs to provider %s (one issuer, one provider)",
                provider.slug,
                owner,
            )
            continue
        found.append(provider)
    _note_for_metrics(found)
    return found


_noted: list[Any] = [None]


def _note_for_metrics(found: list[Provider]) -> None:
    """Tell the metrics which slugs and hosts are providers' (their only label values)."""
    urls = {p.slug: [p.issuer, *p.endpoints.values()] for p in found}
    urls.setdefault(DEFAULT_SLUG, [])
    signature = tuple(sorted((slug, tuple(u)) for slug, u in urls.items()))
    if signature != _noted[0]:
        metrics.note_providers(urls)
        _noted[0] = signature


def issuer_owner(issuer: str, *, exclude: str | None = None) -> Provider | None:
    """The provider (enabled or not) that owns this issuer, other than the slug ``exclude``."""
    key = issuer_key(issuer)
    return next(
        (p for p in all_providers() if p.slug != exclude and issuer_key(p.issuer) == key), None
    )


def enabled_providers() -> list[Provider]:
    return [p for p in all_providers() if p.enabled]


def provider_get(slug: str | None) -> Provider:
    """The enabled provider of this slug; ``UnknownProvider`` (a 404 in words) otherwise."""
    for provider in enabled_providers():
        if provider.slug == slug:
            return provider
    raise UnknownProvider()


def default_provider() -> Provider:
    """The provider ``default`` (configured or not), for the flows that name none."""
    return settings_provider()


def provider_for_token(issuer: Any, audience: Any = None) -> Provider:
    """The enabled provider that issued a token: the one provider that owns its issuer.

    ``audience`` is not used to choose: one issuer belongs to one provider (``all_providers``
    leaves out a second one), so it cannot pick another provider's keys. An issuer no
    enabled provider has is refused in words.
    """
    candidates = [p for p in enabled_providers() if p.issuer == issuer]
    if not candidates:
        raise UnknownProvider(
            "unknown_issuer",
            "The token was issued by an identity provider this site does not know.",
        )
    return candidates[0]


def provider_for_email(email: str) -> Provider | None:
    """The enabled provider whose ``email_domains`` include this email's domain."""
    return next((p for p in enabled_providers() if p.handles_email(email)), None)


def _row_changed(**kwargs: Any) -> None:
    registry_forget()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in DEFAULTS or setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        registry_forget()


def connect_signals() -> None:
    """Forget the admin's providers in this process as soon as a row or a setting changes."""
    from django.core.signals import setting_changed
    from django.db.models.signals import post_delete, post_save

    setting_changed.connect(_setting_changed, dispatch_uid="oidc-provider-settings")
    post_save.connect(_row_changed, sender="accounts.OIDCProvider", dispatch_uid="oidc-provider")
    post_delete.connect(_row_changed, sender="accounts.OIDCProvider", dispatch_uid="oidc-provider")
