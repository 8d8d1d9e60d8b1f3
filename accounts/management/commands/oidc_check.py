"""``manage.py oidc_check``: print the effective OIDC configuration and check every provider.

Thin: the checks live in ``accounts.diagnostics``. Exits non-zero (``CommandError``) when
any check of any provider fails, so it can gate a deployment.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.diagnostics import CheckResult, config_describe, provider_check, provider_describe
from accounts.providers.provider import Provider
from accounts.providers.registry import all_providers, settings_provider


class Command(BaseCommand):
    help = (
        "Print the OIDC settings (secrets masked), fetch discovery and the JWKS, and check the "
        "issuer, the signing algorithms and every endpoint of each provider."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--client-credentials",
            action="store_true",
            help="also try a client-credentials grant at the token endpoint",
        )
        parser.add_argument("--provider", help="check this provider only (its slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        providers = self.chosen(options.get("provider"))
        self.table("Configuration:", config_describe())
        several = len(providers) > 1 or not providers[0].is_default
        failed: list[str] = []
        total = 0
        for provider in providers:
            if several:
                state = "" if provider.enabled else ", switched off"
                self.stdout.write(f"Provider {provider.slug} ({provider.source}{state}):")
                if not provider.is_default:
                    self.table("  Settings:", provider_describe(provider), indent="    ")
            results = provider_check(provider, client_credentials=options["client_credentials"])
            self.results(results)
            total += len(results)
            prefix = f"{provider.slug}: " if several else ""
            failed += [prefix + result.name for result in results if not result.ok]
        if failed:
            raise CommandError(
                f"oidc_check: {len(failed)} of {total} checks failed: {', '.join(failed)}"
            )
        self.stdout.write(f"All {total} checks passed.")

    def chosen(self, slug: str | None) -> list[Provider]:
        providers = all_providers() or [settings_provider()]
        if slug is None:
            return providers
        chosen = [p for p in providers if p.slug == slug]
        if not chosen:
            known = ", ".join(p.slug for p in providers)
            raise CommandError(f"No provider {slug!r}; the providers are: {known}.")
        return chosen

    def table(self, title: str, rows: list[tuple[str, str]], indent: str = "  ") -> None:
        width = max(len(name) for name, _ in rows)
        self.stdout.write(title)
        for name, value in rows:
            self.stdout.write(f"{indent}{name:<{width}}  {value}")

    def results(self, results: list[CheckResult]) -> None:
        width = max(len(result.name) for result in results)
        self.stdout.write("Checks:")
        for result in results:
            mark = self.style.SUCCESS("PASS") if result.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"  {mark}  {result.name:<{width}}  {result.detail}")
