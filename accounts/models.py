"""Identities at the provider, the OIDC state of each signed-in session, and used JTIs."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OIDCIdentity(models.Model):
    """A user's account at one OpenID Provider, keyed by (issuer, subject).

    Sign-in finds users through this table only, never by email: the email at the provider
    may change or be unverified, the (iss, sub) pair is the stable identifier (OIDC Core 5.7).
    ``provider`` is the slug of the provider the identity was created through: every lookup
    asks for it too, so a provider's tokens only ever resolve its own identities, even if a
    second provider claimed the same issuer.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    provider = models.CharField(
        max_length=50,
        default="default",
        help_text="The slug of the provider this identity was created through; only that "
        "provider's tokens find it.",
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True, help_text="The email the provider last reported.")
    email_verified = models.BooleanField(
        default=False, help_text="Whether the provider said it verified that email."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="unique_oidc_identity")
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"


class OIDCSession(models.Model):
    """The provider-side state of one Django session: tokens, expiry and the provider's sid.

    The tokens live in this row rather than in the session dict so that the refresh
    middleware can lock one row and so that back-channel logout can find every session of
    a ``sid`` or a ``sub``, whichever session engine stores the sessions themselves.
    """

    session_key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_sessions"
    )
    provider = models.CharField(
        max_length=50,
        default="default",
        help_text="The slug of the provider this session signed in at: refresh and logout go "
        "there.",
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    sid = models.CharField(max_length=255, blank=True, db_index=True)
    # Encrypted at rest (accounts/sessions/token_store.py): read them only through token_store.read.
    id_token = models.TextField(blank=True)
    access_token = models.TextField(blank=True)
    refresh_token = models.TextField(blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    provider_unreachable_since = models.DateTimeField(null=True, blank=True)
    # A refresh claimed this row at this moment and has not stored its result yet: nobody
    # else may spend the refresh token meanwhile, whatever lock they hold (see refresh.py).
    refresh_started_at = models.DateTimeField(null=True, blank=True)
    # What the user sees in their list of sessions, recorded at sign-in.
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = "OIDC session"
        indexes = [models.Index(fields=["issuer", "subject"], name="oidc_session_iss_sub")]

    def __str__(self) -> str:
        return f"session of {self.subject} @ {self.issuer}"


class UsedTokenId(models.Model):
    """A ``jti`` already accepted (logout tokens), kept until the token would have expired."""

    issuer = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="unique_used_jti")]

    def __str__(self) -> str:
        return f"{self.jti} @ {self.issuer}"


class AuditEvent(models.Model):
    """One security event: a sign-in, a sign-out, a refused refresh, a sync run, ...

    Written by the flows through ``accounts.audit.log.record`` only, never edited. ``event``,
    ``outcome`` and ``reason`` are short machine codes (see ``accounts/audit/log.py``);
    ``provider`` is a plain provider slug (``default`` for the configured provider). No row
    ever holds a token, a code or a secret. ``count`` is above 1 for aggregated rows
    (refused bearer tokens: one row per reason and minute).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    event = models.CharField(max_length=40)
    outcome = models.CharField(max_length=16)
    reason = models.CharField(max_length=64, blank=True)
    provider = models.CharField(max_length=64, blank=True, default="default")
    issuer = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    username = models.CharField(max_length=150, blank=True, help_text="as it was at the time")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    count = models.PositiveIntegerField(default=1)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "audit event"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["event", "created_at"], name="audit_event_created")]

    def __str__(self) -> str:
        return f"{self.event} {self.outcome} {self.reason or ''}".strip()


SECRET_PURPOSE = "oidc-provider-client-secret"


class OIDCProvider(models.Model):
    """An identity provider added by an operator in the admin (``providers.registry`` reads it).

    The same keys as an entry of ``OIDC_PROVIDERS``. The client secret is stored encrypted
    (``accounts.security.crypto``, a key derived from ``SECRET_KEY``) and written again under the
    current key whenever the row is saved.
    """

    TOKEN_AUTH_METHODS = [
        ("client_secret_basic", "client_secret_basic (HTTP Basic)"),
        ("client_secret_post", "client_secret_post (form fields)"),
        ("private_key_jwt", "private_key_jwt (the site's key, /oidc/jwks.json; no secret)"),
    ]

    slug = models.SlugField(
        max_length=50,
        unique=True,
        help_text="Short name in URLs: the redirect URI is /oidc/callback/<slug>/.",
    )
    label = models.CharField(max_length=100, help_text="The sign-in button's text.")
    enabled = models.BooleanField(
        default=True, help_text="Off: no new sign-in through this provider."
    )
    issuer = models.CharField(max_length=255, help_text="Tokens must carry exactly this iss.")
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    discovery = models.BooleanField(
        default=True, help_text="Read the endpoints from {issuer}/.well-known/openid-configuration."
    )
    endpoints_other_host = models.BooleanField(
        "endpoints on another host",
        default=False,
        help_text="Allow endpoints typed in by hand on another host than the issuer's "
        "(recorded in the audit log). Off: they must live on the issuer's host.",
    )
    authorization_endpoint = models.URLField(max_length=500, blank=True)
    token_endpoint = models.URLField(max_length=500, blank=True)
    userinfo_endpoint = models.URLField(max_length=500, blank=True)
    jwks_uri = models.URLField(max_length=500, blank=True)
    end_session_endpoint = models.URLField(max_length=500, blank=True)
    introspection_endpoint = models.URLField(max_length=500, blank=True)
    introspect = models.BooleanField(
        "introspect opaque tokens",
        default=False,
        help_text="Send opaque bearer tokens to this provider's introspection endpoint.",
    )
    opaque_token_prefix = models.CharField(
        max_length=50,
        blank=True,
        help_text="Opaque tokens starting with this go to this provider (needed when several "
        "providers introspect).",
    )
    pushed_authorization_request_endpoint = models.URLField(
        max_length=500, blank=True, help_text="PAR (RFC 9126); empty: from discovery."
    )
    profile = models.CharField(
        max_length=16,
        blank=True,
        choices=[("", "(none)"), ("fapi2", "FAPI 2.0 Security Profile")],
        help_text="FAPI 2.0: PAR, DPoP, private_key_jwt, PS256/ES256/EdDSA ID tokens.",
    )
    use_par = models.CharField(
        max_length=4,
        blank=True,
        default="auto",
        choices=[("auto", "auto (when advertised)"), ("1", "always"), ("0", "never")],
        help_text="Push the authorization request (RFC 9126).",
    )
    dpop = models.BooleanField(
        default=False, help_text="Ask for DPoP-bound tokens (RFC 9449); always on under FAPI 2.0."
    )
    sign_algo = models.CharField(max_length=100, default="RS256", help_text="Comma-separated.")
    scopes = models.CharField(max_length=255, default="openid email profile")
    token_auth_method = models.CharField(
        max_length=32, choices=TOKEN_AUTH_METHODS, default="client_secret_basic"
    )
    email_domains = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated: work emails routed here."
    )
    username_claim = models.CharField(max_length=100, default="preferred_username")
    groups_claim = models.CharField(max_length=100, default="groups")
    groups_allowlist = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    groups_prefix = models.CharField(max_length=100, blank=True)
    staff_groups = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    superuser_groups = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    trusted_audiences = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    fetch_userinfo = models.BooleanField(default=True)
    create_user = models.BooleanField(default=True)
    link_by_email = models.BooleanField(default=False)
    admin_max_auth_age = models.PositiveIntegerField(
        default=3600,
        help_text="Staff from this provider need an authentication at most this many seconds "
        "old to use the admin.",
    )
    admin_acr_values = models.CharField(
        max_length=255, blank=True, help_text="Comma-separated acr values the admin accepts."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "identity provider"
        ordering = ["label", "slug"]

    def __str__(self) -> str:
        return f"{self.label or self.slug} ({self.slug})"

    def save(self, *args, **kwargs) -> None:
        """Write the secret again under the current key when it was read with a fallback."""
        from accounts.security.crypto import needs_rotation

        if needs_rotation(self.client_secret_encrypted, purpose=SECRET_PURPOSE):
            self.set_client_secret(self.client_secret)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "client_secret_encrypted"}
        super().save(*args, **kwargs)

    @property
    def client_secret(self) -> str:
        """The secret in clear; raises ``crypto.DecryptionError`` after a key loss."""
        from accounts.security.crypto import decrypt

        return decrypt(self.client_secret_encrypted, purpose=SECRET_PURPOSE)

    def set_client_secret(self, secret: str) -> None:
        from accounts.security.crypto import encrypt

        self.client_secret_encrypted = encrypt(secret, purpose=SECRET_PURPOSE)

    def values(self) -> dict:
        """The per-provider keys of ``OIDC_PROVIDERS``, secret decrypted."""
        names = [f.name for f in self._meta.fields if f.name not in ("id", "slug")]
        values = {name: getattr(self, name) for name in names}
        values.pop("client_secret_encrypted")
        values["client_secret"] = self.client_secret
        return values


SSF_AUTHORIZATION_PURPOSE = "ssf-push-authorization"


class SignalStream(models.Model):
    """The Shared Signals stream of one provider at its transmitter (``accounts/ssf/``).

    Created by ``manage.py ssf_stream create`` (or by the first event of a provider whose
    push ``Authorization`` is configured), updated by every event received: the admin shows
    its status and last event. The push ``Authorization`` value it registered is stored
    encrypted like a provider's client secret.
    """

    provider = models.CharField(max_length=50, unique=True)
    stream_id = models.CharField(max_length=255, blank=True)
    delivery = models.CharField(max_length=16, default="push", help_text="push or poll")
    status = models.CharField(
        max_length=32, blank=True, help_text="As the transmitter last said: enabled, paused, ..."
    )
    authorization_encrypted = models.TextField(blank=True, editable=False)
    poll_endpoint = models.URLField(max_length=500, blank=True)
    events_delivered = models.JSONField(default=list, blank=True)
    events_received = models.PositiveIntegerField(default=0)
    last_event_type = models.CharField(max_length=255, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_verification_at = models.DateTimeField(null=True, blank=True)
    last_verification_state = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "shared signals stream"

    def __str__(self) -> str:
        return f"stream of {self.provider} ({self.status or 'unknown'})"

    @property
    def authorization(self) -> str:
        """The push ``Authorization`` value in clear ("" when none or unreadable)."""
        from accounts.security.crypto import DecryptionError, decrypt

        if not self.authorization_encrypted:
            return ""
        try:
            return decrypt(self.authorization_encrypted, purpose=SSF_AUTHORIZATION_PURPOSE)
        except DecryptionError:
            return ""

    def set_authorization(self, value: str) -> None:
        from accounts.security.crypto import encrypt

        self.authorization_encrypted = (
            encrypt(value, purpose=SSF_AUTHORIZATION_PURPOSE) if value else ""
        )


class TokensNotBefore(models.Model):
    """Access tokens of this user issued before ``not_before`` are refused by the API.

    Written when a provider signals that the user's sessions were revoked or the account was
    disabled (``accounts/ssf/``); read through ``accounts.users.not_before`` (shared cache).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="tokens_not_before",
    )
    not_before = models.DateTimeField()

    def __str__(self) -> str:
        return f"tokens of user {self.user_id} not before {self.not_before:%Y-%m-%d %H:%M:%S}"


class SignalDeactivation(models.Model):
    """A user deactivated by a provider's RISC event, so only its ``account-enabled`` undoes it.

    A user an operator deactivated has no row, and no event reactivates them.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="signal_deactivation",
    )
    provider = models.CharField(max_length=50)
    event = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"user {self.user_id} deactivated by {self.provider} ({self.event})"
