"""Building blocks that know nothing of OpenID Connect.

- ``crypto``: seal and open secrets at rest (AES-GCM, keys derived from ``SECRET_KEY``);
- ``client_info``: the client's address and user agent, behind trusted proxies;
- ``locks``: cross-process locks (cache, file) so a grant is spent once and a key fetched once;
- ``shared_cache``: the shared cache as an accelerator, degrading to this process when it errors.

The bottom of the house above ``conf`` and ``errors``: imports nothing else of ``accounts``.
"""
