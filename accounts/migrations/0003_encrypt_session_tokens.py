"""Encrypt the tokens already stored in clear in OIDCSession (see accounts/token_store.py).

Backwards, the tokens are decrypted again (rows whose key is gone are left as they are).
The purpose is written out here, not imported, so this migration keeps meaning what it
meant when it was written.
"""

from django.db import migrations

from accounts import crypto

PURPOSE = "oidc-session-tokens"
FIELDS = ("id_token", "access_token", "refresh_token")
BATCH = 500


def _rewrite(apps, convert) -> None:
    OIDCSession = apps.get_model("accounts", "OIDCSession")
    batch = []
    for row in OIDCSession.objects.only("pk", *FIELDS).iterator(chunk_size=BATCH):
        changed = False
        for field in FIELDS:
            value = getattr(row, field)
            new = convert(value)
            if new != value:
                setattr(row, field, new)
                changed = True
        if changed:
            batch.append(row)
        if len(batch) >= BATCH:
            OIDCSession.objects.bulk_update(batch, FIELDS)
            batch = []
    if batch:
        OIDCSession.objects.bulk_update(batch, FIELDS)


def encrypt_tokens(apps, schema_editor) -> None:
    def convert(value: str) -> str:
        if not value or crypto.is_encrypted(value):
            return value
        return crypto.encrypt(value, purpose=PURPOSE)

    _rewrite(apps, convert)


def decrypt_tokens(apps, schema_editor) -> None:
    def convert(value: str) -> str:
        if not value or not crypto.is_encrypted(value):
            return value
        try:
            return crypto.decrypt(value, purpose=PURPOSE)
        except crypto.DecryptionError:
            return value

    _rewrite(apps, convert)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_session_details_and_audit")]

    operations = [migrations.RunPython(encrypt_tokens, decrypt_tokens, elidable=False)]
