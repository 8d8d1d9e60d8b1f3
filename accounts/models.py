"""Identities at the provider, the OIDC state of each signed-in session, and used JTIs."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OIDCIdentity(models.Model):
    """A user's account at one OpenID Provider, keyed by (issuer, subject).

    Sign-in finds users through this table only, never by email: the email at the provider
    may change or be unverified, the (iss, sub) pair is the stable identifier (OIDC Core 5.7).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True, help_text="The email the provider last reported.")
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
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    sid = models.CharField(max_length=255, blank=True, db_index=True)
    # Encrypted at rest (accounts/token_store.py): read them only through token_store.read.
    id_token = models.TextField(blank=True)
    access_token = models.TextField(blank=True)
    refresh_token = models.TextField(blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    provider_unreachable_since = models.DateTimeField(null=True, blank=True)
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

    Written by the flows through ``accounts.audit.record`` only, never edited. ``event``,
    ``outcome`` and ``reason`` are short machine codes (see ``accounts/audit.py``);
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
