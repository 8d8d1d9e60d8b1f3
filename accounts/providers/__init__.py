"""Identity providers: one provider's settings and endpoints, and where providers come from.

- ``provider``: the ``Provider`` object (settings, endpoints, redirect URI, claim policy,
  cache prefix) and how a declaration becomes one;
- ``registry``: the ``default`` provider, ``OIDC_PROVIDERS`` and providers in the database.

Their admin pages live in ``accounts.admin.providers`` (it runs a live check, which needs
the protocol above this package). May import models, audit, security, conf and errors only.
"""
