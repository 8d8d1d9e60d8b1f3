"""Single sign-on through OpenID Connect: the one Django app of this site.

Packages by concern, in layers: a module imports only from its own package and from the
packages below it. The layers are written once, as the import-linter contracts in
``pyproject.toml`` (``make test`` runs ``lint-imports``), and drawn in the README's "How it
fits together"; each package's docstring says what lives there and what it may import.

``backends``, ``middleware``, ``drf``, ``api_auth`` and ``crypto`` at this level are kept
only so that paths people copied keep working; each says where its names live now.
"""
