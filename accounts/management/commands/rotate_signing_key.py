"""``manage.py rotate_signing_key``: put a new private_key_jwt signing key in the key file.

Thin: calls ``accounts.oidc.signing_keys.rotate``. The key that signs now is kept (and goes on
signing for ``OIDC_RP_SIGNING_KEY_DELAY`` seconds, while providers pick up the new public
key from ``/oidc/jwks.json``); any older key is dropped.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.conf import oidc_settings
from accounts.oidc import signing_keys


class Command(BaseCommand):
    help = "Add a new signing key for private_key_jwt; keep the current one, drop older ones."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            fresh, kept = signing_keys.rotate()
        except (signing_keys.KeyFileError, OSError) as exc:
            raise CommandError(f"The key file cannot be rotated: {exc}") from exc
        path = signing_keys.key_file()
        self.stdout.write(f"New key {fresh.kid} ({fresh.alg}) written to {path}.")
        if kept is not None:
            delay = oidc_settings.OIDC_RP_SIGNING_KEY_DELAY
            self.stdout.write(
                f"Key {kept.kid} keeps signing for {delay} s while providers fetch the new "
                "public key; both are published at /oidc/jwks.json."
            )
