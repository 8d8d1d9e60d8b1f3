"""One identity provider: its settings, endpoints and cache keys, resolved once per flow.

A ``Provider`` is what every module asks instead of reading settings: the authorization
request, the callback, token validation, JWKS and discovery caches, userinfo, refresh,
logout and the commands all take the provider of the flow they serve. ``registry``
builds them from the three places providers come from (the ``OIDC_OP_*`` settings, which
make the provider ``default``; ``OIDC_PROVIDERS``; the admin) with ``provider_build``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.urls import reverse

from accounts.conf import (
    FAPI2_ALGORITHMS,
    FAPI2_PROFILE,
    PAR_MODES,
    TOKEN_AUTH_METHODS,
    as_list,
    oidc_settings,
)

DEFAULT_SLUG = "default"
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")

# Metadata names of OpenID Connect Discovery, which are also the per-provider setting keys.
ENDPOINT_NAMES = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "introspection_endpoint",
    "pushed_authorization_request_endpoint",
)
KNOWN_KEYS = {
    "label", "issuer", "client_id", "client_secret", "discovery", *ENDPOINT_NAMES,
    "sign_algo", "scopes", "token_auth_method", "email_domains", "trusted_audiences",
    "fetch_userinfo", "create_user", "link_by_email", "username_claim", "groups_claim",
    "groups_allowlist", "groups_prefix", "staff_groups", "superuser_groups", "enabled",
    "admin_max_auth_age", "admin_acr_values", "ssf_push_authorization", "ssf_audience",
    "introspect", "opaque_token_prefix", "profile", "use_par", "dpop",
}  # fmt: skip

# Where a provider was declared: shown in the admin and by oidc_check.
SOURCE_SETTINGS = "OIDC_OP_* settings"
SOURCE_ENV = "OIDC_PROVIDERS"
SOURCE_DATABASE = "admin"


@dataclass(frozen=True)
class ClaimPolicy:
    """Which claims to read and which groups may come from the provider."""

    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    groups_allowlist: tuple[str, ...] = ()
    groups_prefix: str = ""
    staff_groups: tuple[str, ...] = ()
    superuser_groups: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls) -> ClaimPolicy:
        return cls(
            username_claim=oidc_settings.OIDC_USERNAME_CLAIM,
            groups_claim=oidc_settings.OIDC_GROUPS_CLAIM,
            groups_allowlist=tuple(oidc_settings.OIDC_GROUPS_ALLOWLIST),
            groups_prefix=oidc_settings.OIDC_GROUPS_PREFIX,
            staff_groups=tuple(oidc_settings.OIDC_STAFF_GROUPS),
            superuser_groups=tuple(oidc_settings.OIDC_SUPERUSER_GROUPS),
        )


@dataclass(frozen=True)
class Provider:
    """Everything the site knows about one provider; immutable, so safe to share."""

    slug: str
    issuer: str
    client_id: str
    client_secret: str = ""
    label: str = ""
    discovery: bool | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    sign_algo: tuple[str, ...] = ("RS256",)
    scopes: str = "openid email profile"
    token_auth_method: str = "client_secret_basic"
    email_domains: tuple[str, ...] = ()
    trusted_audiences: tuple[str, ...] = ()
    fetch_userinfo: bool = True
    create_user: bool = True
    link_by_email: bool = False
    policy: ClaimPolicy = field(default_factory=ClaimPolicy)
    admin_max_auth_age: int = 3600
    admin_acr_values: tuple[str, ...] = ()
    enabled: bool = True
    source: str = SOURCE_SETTINGS
    # Shared Signals (accounts/ssf/): the push Authorization value, and the SETs' aud
    ssf_push_authorization: str = field(default="", repr=False)
    ssf_audience: str = ""
    introspect: bool = False  # opaque bearer tokens may be introspected here (opt in)
    opaque_token_prefix: str = ""  # opaque tokens starting with this go here
    profile: str = ""  # "fapi2": the FAPI 2.0 Security Profile
    use_par: str = "auto"  # PAR_MODES
    dpop: bool = False

    @property
    def fapi2(self) -> bool:
        return self.profile == FAPI2_PROFILE

    @property
    def par_mode(self) -> str:
        """``1``: always push the authorization request; ``auto``: when advertised; ``0``."""
        return "1" if self.fapi2 else self.use_par

    @property
    def dpop_enabled(self) -> bool:
        """Ask for DPoP-bound tokens: when configured, and always under FAPI 2.0."""
        return self.dpop or self.fapi2

    @property
    def is_default(self) -> bool:
        return self.slug == DEFAULT_SLUG

    @property
    def display_name(self) -> str:
        return self.label or ("SSO" if self.is_default else self.slug)

    @property
    def discovery_enabled(self) -> bool:
        """Discovery is on when asked for, or when no endpoint is configured at all."""
        if self.discovery is not None:
            return bool(self.discovery)
        core = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
        return not any(self.endpoints.get(name) for name in core)

    @property
    def callback_path(self) -> str:
        """This provider's redirect URI path: ``/oidc/callback/`` for ``default`` only."""
        if self.is_default:
            return reverse("oidc_authentication_callback")
        return reverse("oidc_provider_callback", kwargs={"slug": self.slug})

    def cache_key(self, kind: str, *parts: str) -> str:
        """A cache key of this provider: nothing cached for one provider serves another."""
        return ":".join(("oidc", self.slug, kind, self.issuer, *parts))

    def handles_email(self, email: str) -> bool:
        domain = email.rpartition("@")[2].strip().lower()
        return bool(domain) and domain in self.email_domains


def _flag(value: Any, default: bool | None) -> bool | None:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _profile(value: Any) -> str:
    """``profile``: "fapi2" (``OIDC_FAPI2=1`` for the provider ``default``) or ""."""
    if value is True or str(value or "").strip().lower() in (FAPI2_PROFILE, "1", "true"):
        return FAPI2_PROFILE
    return "" if value in (None, False, "", "0") else str(value).strip().lower()


def _par_mode(value: Any) -> str:
    if value is None or value == "":
        return "auto"
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value).strip().lower()
    return {"true": "1", "yes": "1", "on": "1", "false": "0", "no": "0", "off": "0"}.get(text, text)


def provider_build(slug: str, values: dict[str, Any], *, source: str) -> Provider:
    """A provider from per-provider keys (``OIDC_PROVIDERS``, the admin, or the default's)."""
    method = str(values.get("token_auth_method") or "client_secret_basic").strip().lower()
    profile = _profile(values.get("profile"))
    default_algo = list(FAPI2_ALGORITHMS) if profile == FAPI2_PROFILE else ["RS256"]
    max_age = values.get("admin_max_auth_age")
    scopes = values.get("scopes") or "openid email profile"
    return Provider(
        slug=slug,
        issuer=str(values.get("issuer") or ""),
        client_id=str(values.get("client_id") or ""),
        client_secret=str(values.get("client_secret") or ""),
        label=str(values.get("label") or ""),
        discovery=_flag(values.get("discovery"), None),
        endpoints={name: str(values[name]) for name in ENDPOINT_NAMES if values.get(name)},
        sign_algo=tuple(as_list(values.get("sign_algo") or default_algo)),
        scopes=scopes if isinstance(scopes, str) else " ".join(scopes),
        token_auth_method=str(method),
        email_domains=tuple(d.lower().lstrip("@") for d in as_list(values.get("email_domains"))),
        trusted_audiences=tuple(as_list(values.get("trusted_audiences"))),
        fetch_userinfo=bool(_flag(values.get("fetch_userinfo"), True)),
        create_user=bool(_flag(values.get("create_user"), True)),
        link_by_email=bool(_flag(values.get("link_by_email"), False)),
        policy=ClaimPolicy(
            username_claim=values.get("username_claim") or "preferred_username",
            groups_claim=values.get("groups_claim") or "groups",
            groups_allowlist=tuple(as_list(values.get("groups_allowlist"))),
            groups_prefix=values.get("groups_prefix") or "",
            staff_groups=tuple(as_list(values.get("staff_groups"))),
            superuser_groups=tuple(as_list(values.get("superuser_groups"))),
        ),
        admin_max_auth_age=int(3600 if max_age in (None, "") else max_age),
        admin_acr_values=tuple(as_list(values.get("admin_acr_values"))),
        enabled=bool(_flag(values.get("enabled"), True)),
        source=source,
        ssf_push_authorization=str(values.get("ssf_push_authorization") or ""),
        ssf_audience=str(values.get("ssf_audience") or ""),
        introspect=bool(_flag(values.get("introspect"), False)),
        opaque_token_prefix=str(values.get("opaque_token_prefix") or ""),
        profile=profile,
        use_par=_par_mode(values.get("use_par")),
        dpop=bool(_flag(values.get("dpop"), False)),
    )


def declaration_problems(slug: Any, values: Any) -> list[str]:
    """What is wrong with one entry of ``OIDC_PROVIDERS``, in words (for the system checks)."""
    if not isinstance(slug, str) or not SLUG_PATTERN.match(slug) or slug == DEFAULT_SLUG:
        return [
            "its name must be lower-case letters, digits and dashes (and not 'default', the "
            "provider of the OIDC_OP_* settings)"
        ]
    if not isinstance(values, dict):
        return ["its settings must be a JSON object"]
    problems = [f"'{key}' is not set" for key in ("issuer", "client_id") if not values.get(key)]
    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}")
    method = values.get("token_auth_method")
    if method and method not in TOKEN_AUTH_METHODS:
        problems.append(f"token_auth_method must be one of {', '.join(TOKEN_AUTH_METHODS)}")
    max_age = values.get("admin_max_auth_age")
    if max_age is not None and not (isinstance(max_age, int) and max_age > 0):
        problems.append("admin_max_auth_age must be a positive number of seconds")
    if _profile(values.get("profile")) not in ("", FAPI2_PROFILE):
        problems.append(f"profile must be '{FAPI2_PROFILE}' or empty")
    if _par_mode(values.get("use_par")) not in PAR_MODES:
        problems.append("use_par must be auto, 1 or 0")
    return problems


def is_loopback(host: str | None) -> bool:
    """Whether a URL's host is this machine (``localhost``, ``*.localhost``, 127/8, ::1)."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_urls(urls: dict[str, str], *, debug: bool) -> list[str]:
    """The names of these URLs that use ``http://`` to another machine, when debug is off."""
    if debug:
        return []
    return [
        name
        for name, url in urls.items()
        if url and urlsplit(url).scheme == "http" and not is_loopback(urlsplit(url).hostname)
    ]


def foreign_host_endpoints(issuer: str, endpoints: dict[str, str]) -> list[str]:
    """The names of these endpoints whose host (and port) is not the issuer's."""
    home = urlsplit(issuer)
    return [
        name
        for name, url in endpoints.items()
        if url and (urlsplit(url).hostname, urlsplit(url).port) != (home.hostname, home.port)
    ]
