"""``manage.py ssf_poll --provider SLUG [--loop]``: receive Shared Signals by polling (RFC 8936).

Thin: calls ``accounts.ssf.poll.poll_once`` (once, or every ``--interval`` seconds with
``--loop``) and prints how many SETs were acted on and refused.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.errors import OIDCError
from accounts.providers.registry import all_providers
from accounts.ssf.poll import poll_once


class Command(BaseCommand):
    help = "Fetch, act on and acknowledge the Security Event Tokens waiting at a transmitter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", default="default", help="the provider's slug")
        parser.add_argument("--loop", action="store_true", help="poll again and again")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
        parser.add_argument("--max-events", type=int, default=100, help="maxEvents per request")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["provider"]
        provider = next((p for p in all_providers() if p.slug == slug), None)
        if provider is None:
            raise CommandError(f"No provider {slug!r}.")
        while True:
            try:
                result = poll_once(provider=provider, max_events=options["max_events"])
            except OIDCError as exc:
                if not options["loop"]:
                    raise CommandError(exc.message) from exc
                self.stderr.write(f"Poll failed: {exc.message}")
            else:
                self.stdout.write(f"Acted on {result.accepted} SET(s), refused {result.refused}.")
                for jti, error in result.errors.items():
                    self.stdout.write(f"  refused {jti}: {error['err']} ({error['description']})")
            if not options["loop"]:
                return
            time.sleep(options["interval"])
