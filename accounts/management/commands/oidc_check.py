"""``manage.py oidc_check``: print the effective OIDC configuration and check the provider.

Thin: the checks live in ``accounts.diagnostics``. Exits non-zero (``CommandError``) when
any check fails, so it can gate a deployment.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.diagnostics import config_describe, provider_check


class Command(BaseCommand):
    help = (
        "Print the OIDC settings (secrets masked), fetch discovery and the JWKS, and check the "
        "issuer, the signing algorithms and every endpoint of the provider."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--client-credentials",
            action="store_true",
            help="also try a client-credentials grant at the token endpoint",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = config_describe()
        width = max(len(name) for name, _ in settings)
        self.stdout.write("Configuration:")
        for name, value in settings:
            self.stdout.write(f"  {name:<{width}}  {value}")
        results = provider_check(client_credentials=options["client_credentials"])
        width = max(len(result.name) for result in results)
        self.stdout.write("Checks:")
        for result in results:
            mark = self.style.SUCCESS("PASS") if result.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"  {mark}  {result.name:<{width}}  {result.detail}")
        failed = [result.name for result in results if not result.ok]
        if failed:
            raise CommandError(
                f"oidc_check: {len(failed)} of {len(results)} checks failed: {', '.join(failed)}"
            )
        self.stdout.write(f"All {len(results)} checks passed.")
