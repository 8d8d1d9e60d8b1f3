"""The one settings object of the accounts app.

Every OIDC setting and its default lives here once; the rest of the code reads
``oidc_settings.NAME`` and never calls ``getattr(settings, ...)``. Values are read lazily,
normalised (comma-separated strings become lists) and cached until a ``setting_changed``
signal clears them, as Django REST framework's ``api_settings`` does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Provider (names of ../shared/INTERFACE.md and mozilla-django-oidc)
    "OIDC_OP_ISSUER": "",
    "OIDC_OP_DISCOVERY": None,  # None: on when no endpoint is configured
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "",
    "OIDC_OP_TOKEN_ENDPOINT": "",
    "OIDC_OP_USER_ENDPOINT": "",
    "OIDC_OP_JWKS_ENDPOINT": "",
    "OIDC_OP_LOGOUT_ENDPOINT": "",
    "OIDC_OP_INTROSPECTION_ENDPOINT": "",
    "OIDC_RP_CLIENT_ID": "",
    "OIDC_RP_CLIENT_SECRET": "",
    "OIDC_RP_SIGN_ALGO": ["RS256"],
    "OIDC_RP_SCOPES": "openid email profile",
    "OIDC_TIMEOUT": 10.0,
    "OIDC_VERIFY_SSL": True,
    "OIDC_TOKEN_USE_BASIC_AUTH": True,
    # Client authentication at the token endpoint (accounts/client_auth.py)
    "OIDC_TOKEN_AUTH_METHOD": "",  # "": client_secret_basic, or _post per the flag above
    "OIDC_RP_SIGNING_KEY_FILE": "",  # "": generated into GENERATED_KEY_FILE on first use
    "OIDC_RP_SIGNING_KEY_DELAY": 300,  # seconds a rotated-in key is published before it signs
    # Validation
    "OIDC_CLOCK_LEEWAY": 30,
    "OIDC_STATE_TTL": 600,
    "OIDC_MAX_STATES": 20,
    "OIDC_REDIRECT_ALLOWED_HOSTS": [],
    "OIDC_TRUSTED_AUDIENCES": [],
    # Caches
    "OIDC_JWKS_CACHE_TTL": 3600,
    "OIDC_JWKS_REFETCH_INTERVAL": 30,
    "OIDC_DISCOVERY_CACHE_TTL": 3600,
    "OIDC_BEARER_CACHE_TTL": 60,
    # API (bearer access tokens)
    "OIDC_API_AUDIENCE": "",  # empty: the client id
    "OIDC_ACCESS_TOKEN_TYPES": ["at+jwt", "application/at+jwt"],
    # Users and claims
    "OIDC_FETCH_USERINFO": True,
    "OIDC_CREATE_USER": True,
    "OIDC_LINK_BY_EMAIL": False,
    "OIDC_USERNAME_CLAIM": "preferred_username",
    "OIDC_GROUPS_CLAIM": "groups",
    "OIDC_GROUPS_ALLOWLIST": [],
    "OIDC_GROUPS_PREFIX": "",
    "OIDC_STAFF_GROUPS": [],
    "OIDC_SUPERUSER_GROUPS": [],
    "OIDC_ADMIN_PASSWORD_LOGIN": False,
    # Admin step-up (accounts/stepup.py)
    "OIDC_ADMIN_MAX_AUTH_AGE": 3600,
    "OIDC_ADMIN_ACR_VALUES": [],
    # Session lifecycle
    "OIDC_REFRESH_LEEWAY": 60,
    "OIDC_REFRESH_GRACE": 300,
    "OIDC_REFRESH_LOCK_TIMEOUT": 15,
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
    # Audit log and client details (accounts/audit.py, accounts/client_info.py)
    "OIDC_AUDIT_RETENTION_DAYS": 180,
    "OIDC_AUDIT_LOG_JSON": False,  # audit log lines as one JSON object each (for a SIEM)
    "OIDC_CLIENT_IP_HEADER": "",  # e.g. X-Forwarded-For, set by your proxy: its last address
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
}

TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


def _as_list(value: Any) -> list[str]:
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
        if name in LIST_SETTINGS:
            return _as_list(value)
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

    def reload(self) -> None:
        self._cache.clear()


oidc_settings = OIDCSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in DEFAULTS:
        oidc_settings.reload()


setting_changed.connect(_reload)


# One small function per setting that is per provider in ../shared/INTERFACE.md, so that
# several providers can answer them later without touching the callers.
def token_auth_method() -> str:
    """How the client authenticates at the token endpoint: one of ``TOKEN_AUTH_METHODS``.

    Unset, ``OIDC_TOKEN_USE_BASIC_AUTH`` decides between the two client-secret methods, as
    before the setting existed. An unknown value is returned as is: ``accounts.E009``
    reports it and ``client_auth`` refuses it as a configuration error.
    """
    method = str(oidc_settings.OIDC_TOKEN_AUTH_METHOD or "").strip().lower()
    if method:
        return method
    if oidc_settings.OIDC_TOKEN_USE_BASIC_AUTH:
        return "client_secret_basic"
    return "client_secret_post"


def admin_max_auth_age() -> int:
    """The oldest authentication at the provider (seconds) the admin accepts."""
    return int(oidc_settings.OIDC_ADMIN_MAX_AUTH_AGE)


def admin_acr_values() -> list[str]:
    """The ``acr`` values the admin accepts; empty: any."""
    return list(oidc_settings.OIDC_ADMIN_ACR_VALUES)
