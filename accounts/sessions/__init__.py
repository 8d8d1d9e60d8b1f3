"""The life of a signed-in session: tokens stored, refreshed, stepped up, ended.

- ``lifecycle``: the session's OIDC keys, tokens stored at sign-in, sessions ended anywhere;
- ``token_store``: tokens sealed at rest; ``refresh``: one refresh per token lifetime;
- ``middleware``: ``OIDCSessionMiddleware``, which keeps sessions fresh;
- ``logout``: back-channel logout tokens accepted; ``stepup``: the admin's fresh sign-in;
- ``revoke``: ended sessions' refresh tokens revoked at their providers.

May import users, oidc, providers, audit, models, security and below; never api, views
or admin.
"""
