"""The site's API as a resource server: who is calling with which access token.

- ``access_tokens``: RFC 9068 JWT access tokens checked locally;
- ``bearer``: a bearer token (JWT or opaque, by introspection) becomes a ``Caller``;
- ``introspection``: where an opaque token may go (opt in, prefix rule), the per-address
  budget of refused introspections and the answers kept by token hash;
- ``access``: the ``api_view`` decorator and ``ApiViewMixin``, and their RFC 6750 refusals;
- ``drf``: the same as Django REST framework authentication and permission classes.

May import sessions, users, oidc, providers, audit and below; never views or admin.
"""
