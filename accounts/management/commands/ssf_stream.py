"""``manage.py ssf_stream --provider SLUG create|status|verify|update|delete``.

Thin: calls the services of ``accounts.ssf.stream_api`` against the provider's Shared
Signals transmitter and prints what it answered; ``CommandError`` in words on failure.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.errors import OIDCError
from accounts.providers.registry import all_providers
from accounts.ssf import stream_api
from accounts.ssf.poll import poll_quietly


class Command(BaseCommand):
    help = "Manage this site's Shared Signals stream at a provider's transmitter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create", "status", "verify", "update", "delete"])
        parser.add_argument("--provider", default="default", help="the provider's slug")
        parser.add_argument(
            "--site-url",
            default="",
            help="this site's public URL (push delivery goes to <url>/oidc/ssf/push/)",
        )
        parser.add_argument("--poll", action="store_true", help="poll delivery instead of push")
        parser.add_argument("--timeout", type=float, default=10.0, help="verify: seconds to wait")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["provider"]
        provider = next((p for p in all_providers() if p.slug == slug), None)
        if provider is None:
            known = ", ".join(p.slug for p in all_providers()) or "none"
            raise CommandError(f"No provider {slug!r}; the providers are: {known}.")
        action = options["action"]
        try:
            if action in ("create", "update"):
                service = (
                    stream_api.stream_create if action == "create" else stream_api.stream_update
                )
                row = service(provider=provider, site_url=options["site_url"], poll=options["poll"])
                self.stdout.write(f"Stream {row.stream_id} of {slug}: {row.delivery} delivery.")
                self.stdout.write(f"Events delivered: {', '.join(row.events_delivered) or 'none'}")
            elif action == "status":
                row = stream_api.stream_status(provider=provider)
                last = row.last_event_at.isoformat() if row.last_event_at else "never"
                self.stdout.write(f"Stream {row.stream_id} of {slug}: {row.status or 'unknown'}")
                self.stdout.write(
                    f"Delivery: {row.delivery}; events received: {row.events_received}"
                )
                self.stdout.write(f"Last event: {row.last_event_type or '-'} at {last}")
            elif action == "verify":
                receive = (lambda: poll_quietly(provider=provider)) if options["poll"] else None
                seconds = stream_api.stream_verify(
                    provider=provider, timeout=options["timeout"], receive=receive
                )
                self.stdout.write(f"Verified: the event arrived after {seconds:.2f} s.")
            else:
                stream_api.stream_delete(provider=provider)
                self.stdout.write(f"Stream of {slug} deleted.")
        except OIDCError as exc:
            raise CommandError(exc.message) from exc
