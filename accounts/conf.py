"""The one settings object of the accounts app, split into global and per-provider settings.

Every OIDC setting and its default lives here once; the rest of the code reads
``oidc_settings.NAME`` and never calls ``getattr(settings, ...)``. Values are read lazily,
normalised (comma-separated strings become lists) and cached until a ``setting_changed``
signal clears them, as Django REST framework's ``api_settings`` does.

Two kinds of settings, so that a newcomer sees at once whose a setting is:

- ``PROVIDER_SETTINGS``: what one identity provider is and how its tokens map onto users.
  The ``OIDC_OP_*``/``OIDC_RP_*``/claim settings configure the provider ``default``; every
  other provider sets the same things under the lower-case key on the right, in
  ``OIDC_PROVIDERS`` or in the admin (``accounts.providers.provider`` builds them all alike).
- ``GLOBAL_DEFAULTS``: the site's own behaviour, shared by every provider: timeouts,
  leeways, cache times, session lifetimes, directory sync.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

# The provider "default": setting -> (its key in OIDC_PROVIDERS and the admin, default).
PROVIDER_SETTINGS: dict[str, tuple[str, Any]] = {
    "OIDC_OP_LABEL": ("label", ""),
    "OIDC_OP_ISSUER": ("issuer", ""),
    "OIDC_OP_DISCOVERY": ("discovery", None),  # None: on when no endpoint is configured
    "OIDC_OP_AUTHORIZATION_ENDPOINT": ("authorization_endpoint", ""),
    "OIDC_OP_TOKEN_ENDPOINT": ("token_endpoint", ""),
    "OIDC_OP_USER_ENDPOINT": ("userinfo_endpoint", ""),
    "OIDC_OP_JWKS_ENDPOINT": ("jwks_uri", ""),
    "OIDC_OP_LOGOUT_ENDPOINT": ("end_session_endpoint", ""),
    "OIDC_OP_INTROSPECTION_ENDPOINT": ("introspection_endpoint", ""),
    # Opaque bearer tokens go to introspection only at providers that opt in, routed by prefix
    "OIDC_OP_INTROSPECT": ("introspect", False),
    "OIDC_OP_OPAQUE_TOKEN_PREFIX": ("opaque_token_prefix", ""),
    "OIDC_OP_EMAIL_DOMAINS": ("email_domains", []),
    "OIDC_RP_CLIENT_ID": ("client_id", ""),
    "OIDC_RP_CLIENT_SECRET": ("client_secret", ""),
    "OIDC_RP_SIGN_ALGO": ("sign_algo", ["RS256"]),
    "OIDC_RP_SCOPES": ("scopes", "openid email profile"),
    # client_secret_basic, client_secret_post or private_key_jwt (accounts/oidc/client_auth.py);
    # "": OIDC_TOKEN_USE_BASIC_AUTH decides between the first two, as before the setting
    "OIDC_TOKEN_AUTH_METHOD": ("token_auth_method", ""),
    "OIDC_TOKEN_USE_BASIC_AUTH": ("token_use_basic_auth", True),  # the default's only
    "OIDC_TRUSTED_AUDIENCES": ("trusted_audiences", []),
    # Users and claims
    "OIDC_FETCH_USERINFO": ("fetch_userinfo", True),
    "OIDC_CREATE_USER": ("create_user", True),
    "OIDC_LINK_BY_EMAIL": ("link_by_email", False),
    "OIDC_USERNAME_CLAIM": ("username_claim", "preferred_username"),
    "OIDC_GROUPS_CLAIM": ("groups_claim", "groups"),
    "OIDC_GROUPS_ALLOWLIST": ("groups_allowlist", []),
    "OIDC_GROUPS_PREFIX": ("groups_prefix", ""),
    "OIDC_STAFF_GROUPS": ("staff_groups", []),
    "OIDC_SUPERUSER_GROUPS": ("superuser_groups", []),
    # Admin step-up (accounts/sessions/stepup.py)
    "OIDC_ADMIN_MAX_AUTH_AGE": ("admin_max_auth_age", 3600),
    "OIDC_ADMIN_ACR_VALUES": ("admin_acr_values", []),
    # Shared Signals receiver (accounts/ssf/): the transmitter's exact Authorization value
    # on every push, and the aud its SETs carry ("": the client id)
    "OIDC_SSF_PUSH_AUTHORIZATION": ("ssf_push_authorization", ""),
    "OIDC_SSF_AUDIENCE": ("ssf_audience", ""),
    # FAPI 2.0, PAR and DPoP (accounts/oidc/par.py, accounts/oidc/dpop.py)
    "OIDC_FAPI2": ("profile", False),  # True here, "fapi2" as a provider key
    "OIDC_USE_PAR": ("use_par", "auto"),  # auto, 1 or 0
    "OIDC_OP_PAR_ENDPOINT": ("pushed_authorization_request_endpoint", ""),
    "OIDC_DPOP": ("dpop", False),  # on under FAPI 2.0 whatever this says
}

GLOBAL_DEFAULTS: dict[str, Any] = {
    # More providers: slug -> settings (JSON in the environment); see accounts/providers/provider.py
    "OIDC_PROVIDERS": {},
    "OIDC_PROVIDERS_RELOAD_INTERVAL": 5,  # seconds before a process sees an admin change
    # Calls to providers
    "OIDC_TIMEOUT": 10.0,
    "OIDC_VERIFY_SSL": True,
    # The site's own keys for private_key_jwt (accounts/oidc/signing_keys.py), one set for all
    "OIDC_RP_SIGNING_KEY_FILE": "",  # "": generated into GENERATED_KEY_FILE on first use
    "OIDC_RP_SIGNING_KEY_DELAY": 300,  # seconds a rotated-in key is published before it signs
    # The site's DPoP key (accounts/oidc/dpop.py), one for all providers
    "OIDC_DPOP_KEY_FILE": "",  # "": generated into GENERATED_DPOP_KEY_FILE on first use
    # Validation
    "OIDC_CLOCK_LEEWAY": 30,
    "OIDC_STATE_TTL": 600,
    "OIDC_MAX_STATES": 20,
    "OIDC_REDIRECT_ALLOWED_HOSTS": [],
    # Caches
    "OIDC_JWKS_CACHE_TTL": 3600,
    "OIDC_JWKS_REFETCH_INTERVAL": 30,
    "OIDC_DISCOVERY_CACHE_TTL": 3600,
    "OIDC_BEARER_CACHE_TTL": 60,
    # Introspection of opaque tokens (accounts/api/introspection.py)
    "OIDC_INTROSPECTION_BUDGET": 30,  # refused introspections per client address and minute
    "OIDC_INTROSPECTION_NEGATIVE_TTL": 30,  # seconds a refused token is remembered
    # API (bearer access tokens)
    "OIDC_API_AUDIENCE": "",  # empty: the client id of the token's provider
    "OIDC_ACCESS_TOKEN_TYPES": ["at+jwt", "application/at+jwt"],
    "OIDC_API_DPOP_NONCE": False,  # DPoP proofs at the API must carry a nonce of this site
    # The admin
    "OIDC_ADMIN_PASSWORD_LOGIN": False,
    # Session lifecycle
    "OIDC_REFRESH_LEEWAY": 60,
    "OIDC_REFRESH_GRACE": 300,
    "OIDC_REFRESH_LOCK_TIMEOUT": 15,
    "OIDC_REFRESH_TIMEOUT": 30.0,  # the refresh grant's own read timeout (a spent grant is kept)
    "OIDC_REFRESH_WAIT": 2.0,  # how long a request waits for its refresh before it goes on
    # Circuit breaker per provider (accounts/oidc/breaker.py)
    "OIDC_BREAKER_THRESHOLD": 3,  # consecutive timeouts/connection errors that open it
    "OIDC_BREAKER_INTERVAL": 5.0,  # first pause, doubled on each failed probe
    "OIDC_BREAKER_MAX_INTERVAL": 60.0,
    "OIDC_SESSION_MAX_AGE": 60 * 60 * 12,
    # User sync
    "OIDC_SYNC_MAX_DEACTIVATE_RATIO": 0.10,
    "OIDC_SYNC_BATCH_SIZE": 1000,
    "OIDC_SCIM_URL": "",
    "OIDC_SCIM_TOKEN": "",
    "OIDC_KEYCLOAK_URL": "",
    "OIDC_KEYCLOAK_REALM": "",
    "OIDC_SYNC_SCOPE": "",  # scope of the client-credentials token for SCIM/Keycloak
    "OIDC_SCIM_SUBJECT_ATTRIBUTE": "externalId",  # or "id"; see accounts/sync/sources/scim.py
    # Audit log and client details (accounts/audit/log.py, accounts/security/client_info.py)
    "OIDC_AUDIT_RETENTION_DAYS": 180,
    "OIDC_AUDIT_LOG_JSON": False,  # audit log lines as one JSON object each (for a SIEM)
    "OIDC_CLIENT_IP_HEADER": "",  # e.g. X-Forwarded-For, set by your proxy: its last address
    # Shared Signals (accounts/ssf/): the oldest iat of a Security Event Token accepted
    "OIDC_SSF_MAX_AGE": 300,
}

DEFAULTS: dict[str, Any] = {
    **{name: default for name, (_key, default) in PROVIDER_SETTINGS.items()},
    **GLOBAL_DEFAULTS,
}

LIST_SETTINGS = {
    "OIDC_ACCESS_TOKEN_TYPES",
    "OIDC_RP_SIGN_ALGO",
    "OIDC_REDIRECT_ALLOWED_HOSTS",
    "OIDC_TRUSTED_AUDIENCES",
    "OIDC_GROUPS_ALLOWLIST",
    "OIDC_STAFF_GROUPS",
    "OIDC_SUPERUSER_GROUPS",
    "OIDC_ADMIN_ACR_VALUES",
    "OIDC_OP_EMAIL_DOMAINS",
}

TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
# The JWS algorithms a provider may be configured to sign with (OIDC_RP_SIGN_ALGO).
SUPPORTED_ALGORITHMS = {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
    "HS256", "HS384", "HS512", "EdDSA",
}  # fmt: skip
# FAPI 2.0 Security Profile 5.4: the only ID-token (and client assertion) algorithms allowed.
FAPI2_ALGORITHMS = ("PS256", "ES256", "EdDSA")
FAPI2_PROFILE = "fapi2"
PAR_MODES = ("auto", "1", "0")


def as_list(value: Any) -> list[str]:
    """A comma-separated string or a sequence, as a list of non-empty strings."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item) for item in value or ()]


class OIDCSettings:
    """Lazy, cached access to the OIDC settings with their defaults."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self._defaults = defaults
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown OIDC setting: {name}")
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str) -> Any:
        value = getattr(settings, name, self._defaults[name])
        if name == "OIDC_RP_SIGN_ALGO" and not hasattr(settings, name) and self.OIDC_FAPI2:
            value = list(FAPI2_ALGORITHMS)  # FAPI 2.0's default when none is named
        if name in LIST_SETTINGS:
            return as_list(value)
        if name == "OIDC_RP_SCOPES" and not isinstance(value, str):
            return " ".join(value)
        if name.endswith("_ENDPOINT") or name == "OIDC_OP_ISSUER":
            return value or ""
        return value

    @property
    def discovery_enabled(self) -> bool:
        """Discovery is on when asked for, or when no endpoint is configured at all."""
        flag = self.OIDC_OP_DISCOVERY
        if flag is not None:
            return bool(flag)
        return not any(
            (
                self.OIDC_OP_AUTHORIZATION_ENDPOINT,
                self.OIDC_OP_TOKEN_ENDPOINT,
                self.OIDC_OP_USER_ENDPOINT,
                self.OIDC_OP_JWKS_ENDPOINT,
            )
        )

    def default_provider_settings(self) -> dict[str, Any]:
        """The provider ``default`` in the per-provider keys of ``OIDC_PROVIDERS``."""
        values = {key: getattr(self, name) for name, (key, _d) in PROVIDER_SETTINGS.items()}
        values.pop("token_use_basic_auth")
        values["token_auth_method"] = token_auth_method()
        return values

    def reload(self) -> None:
        self._cache.clear()


oidc_settings = OIDCSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in DEFAULTS:
        oidc_settings.reload()


setting_changed.connect(_reload)


# One small function per setting that is per provider in ../shared/INTERFACE.md: the
# provider's own value (accounts.providers.Provider), or the default provider's setting.
def token_auth_method(provider: Any = None) -> str:
    """How the client authenticates at the token endpoint: one of ``TOKEN_AUTH_METHODS``.

    Unset, ``OIDC_TOKEN_USE_BASIC_AUTH`` decides between the two client-secret methods, as
    before the setting existed. An unknown value is returned as is: ``accounts.E009``
    reports it and ``client_auth`` refuses it as a configuration error.
    """
    if provider is not None:
        return provider.token_auth_method
    method = str(oidc_settings.OIDC_TOKEN_AUTH_METHOD or "").strip().lower()
    if method:
        return method
    if oidc_settings.OIDC_TOKEN_USE_BASIC_AUTH:
        return "client_secret_basic"
    return "client_secret_post"


def admin_max_auth_age(provider: Any = None) -> int:
    """The oldest authentication at the provider (seconds) the admin accepts."""
    if provider is not None:
        return provider.admin_max_auth_age
    return int(oidc_settings.OIDC_ADMIN_MAX_AUTH_AGE)


def admin_acr_values(provider: Any = None) -> list[str]:
    """The ``acr`` values the admin accepts; empty: any."""
    if provider is not None:
        return list(provider.admin_acr_values)
    return list(oidc_settings.OIDC_ADMIN_ACR_VALUES)
