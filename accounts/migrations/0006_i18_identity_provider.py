"""Identities remember the provider they were created through; providers may opt into other hosts.

Existing identities get the slug of the provider that owns their issuer: the provider
``default`` (``OIDC_OP_ISSUER``), then ``OIDC_PROVIDERS`` in order, then the admin's rows
oldest first. An issuer no provider has keeps ``default``.
"""

from django.db import migrations, models


def _issuer_owners(apps) -> dict[str, str]:
    from accounts.conf import oidc_settings

    owners: dict[str, str] = {}
    if oidc_settings.OIDC_OP_ISSUER:
        owners[oidc_settings.OIDC_OP_ISSUER] = "default"
    declared = oidc_settings.OIDC_PROVIDERS or {}
    if isinstance(declared, dict):
        for slug, values in declared.items():
            if isinstance(values, dict) and values.get("issuer"):
                owners.setdefault(str(values["issuer"]), str(slug))
    for slug, issuer in apps.get_model("accounts", "OIDCProvider").objects.order_by(
        "pk"
    ).values_list("slug", "issuer"):
        owners.setdefault(issuer, slug)
    return owners


def fill_identity_providers(apps, schema_editor) -> None:
    identities = apps.get_model("accounts", "OIDCIdentity").objects
    for issuer, slug in _issuer_owners(apps).items():
        if slug != "default":
            identities.filter(issuer=issuer).update(provider=slug)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_i17_refresh_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="oidcidentity",
            name="provider",
            field=models.CharField(
                default="default",
                help_text="The slug of the provider this identity was created through; only "
                "that provider's tokens find it.",
                max_length=50,
            ),
        ),
        migrations.AddField(
            model_name="oidcprovider",
            name="endpoints_other_host",
            field=models.BooleanField(
                default=False,
                help_text="Allow endpoints typed in by hand on another host than the issuer's "
                "(recorded in the audit log). Off: they must live on the issuer's host.",
                verbose_name="endpoints on another host",
            ),
        ),
        migrations.AddField(
            model_name="oidcprovider",
            name="introspect",
            field=models.BooleanField(
                default=False,
                help_text="Send opaque bearer tokens to this provider's introspection endpoint.",
                verbose_name="introspect opaque tokens",
            ),
        ),
        migrations.AddField(
            model_name="oidcprovider",
            name="opaque_token_prefix",
            field=models.CharField(
                blank=True,
                help_text="Opaque tokens starting with this go to this provider (needed when "
                "several providers introspect).",
                max_length=50,
            ),
        ),
        migrations.RunPython(fill_identity_providers, migrations.RunPython.noop),
    ]
