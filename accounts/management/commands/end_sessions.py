"""``manage.py end_sessions``: sign one user out everywhere, or a provider's users, now.

Thin: finds the user by ``--username``, ``--email`` or ``--issuer``/``--subject`` (or
``--provider``/``--subject``) and calls ``accounts.sessions.lifecycle.end_user_sessions``;
``--provider`` alone ends every session signed in at that provider. Sessions in signed
cookies cannot be ended (see the accounts.W002 check).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.conf import oidc_settings
from accounts.models import OIDCIdentity, OIDCSession
from accounts.providers.registry import all_providers
from accounts.sessions import lifecycle as sessions


class Command(BaseCommand):
    help = (
        "End every session of one user: the OIDC sessions of all their identities and, when "
        "password sign-in is on, their other database sessions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", help="the user's username")
        parser.add_argument("--email", help="the user's email (must match exactly one user)")
        parser.add_argument(
            "--issuer", help="the provider's issuer (default: OIDC_OP_ISSUER); with --subject"
        )
        parser.add_argument("--subject", help="the user's subject (sub) at the provider")
        parser.add_argument(
            "--provider",
            help="a provider's slug: with --subject, the subject at that provider; alone, end "
            "every session signed in at that provider",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options.get("provider")
        if slug:
            provider = self.find_provider(slug)
            if options.get("issuer"):
                raise CommandError("Give --provider or --issuer, not both.")
            options["issuer"] = provider.issuer
            if not any(options.get(n) for n in ("username", "email", "subject")):
                rows = OIDCSession.objects.filter(provider=provider.slug)
                ended = sessions.end_sessions(list(rows), revoke=True)
                noun = "session" if ended == 1 else "sessions"
                self.stdout.write(f"Ended {ended} {noun} signed in at {provider.slug}.")
                return
        user = self.find_user(options)
        ended = sessions.end_user_sessions([user.pk], by="end_sessions command")
        noun = "session" if ended == 1 else "sessions"
        self.stdout.write(f"Ended {ended} {noun} of {user.get_username()}.")

    def find_provider(self, slug: str) -> Any:
        found = [p for p in all_providers() if p.slug == slug]
        if not found:
            known = ", ".join(p.slug for p in all_providers()) or "none"
            raise CommandError(f"No provider {slug!r}; the providers are: {known}.")
        return found[0]

    def find_user(self, options: dict[str, Any]) -> Any:
        username, email = options.get("username"), options.get("email")
        issuer, subject = options.get("issuer"), options.get("subject")
        given = [name for name in ("username", "email", "subject") if options.get(name)]
        if issuer and not subject:
            raise CommandError("--issuer needs --subject.")
        if not given:
            raise CommandError("Say whose sessions to end: --username, --email or --subject.")
        if len(given) > 1:
            raise CommandError("Give only one of --username, --email and --subject.")
        User = get_user_model()
        if username:
            user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
            if user is None:
                raise CommandError(f"No user with username {username!r}.")
            return user
        if email:
            users = list(User._default_manager.filter(email__iexact=email)[:2])
            if not users:
                raise CommandError(f"No user with email {email!r}.")
            if len(users) > 1:
                raise CommandError(f"Several users have email {email!r}: use --username.")
            return users[0]
        issuer = issuer or oidc_settings.OIDC_OP_ISSUER
        identity = (
            OIDCIdentity.objects.select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if identity is None:
            raise CommandError(f"No user with subject {subject!r} at {issuer}.")
        return identity.user
