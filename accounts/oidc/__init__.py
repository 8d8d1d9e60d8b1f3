"""OpenID Connect as a client speaks it: one module per protocol message or resource.

- ``http``: provider calls, timeouts and their errors; ``discovery``: provider metadata;
- ``client_auth``: how the client authenticates (secret or ``private_key_jwt``) with
  ``signing_keys`` (the site's own keys); ``token_endpoint``: the token request;
- ``authorization``: the authorization request and its state; ``requirement``: ``max_age`` and
  ``acr`` asked for and checked;
- ``jwks``: the provider's keys; ``tokens``: ID, logout and signed userinfo token validation;
  ``jose_safe``: ``read_jws``, the size cap and safe decoding every token parser calls first;
  ``userinfo``: the userinfo request; ``revocation``: RFC 7009 token revocation.

May import providers, audit, models, security, conf and errors; never users, sessions,
api, views or admin: no request-level policy lives here.
"""
