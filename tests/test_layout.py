"""The house of ``accounts/``: old public import paths still work, every package says its place.

The layers themselves are checked by ``lint-imports`` (the contracts in ``pyproject.toml``),
which ``make test`` runs before pytest.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

ACCOUNTS = Path(__file__).resolve().parents[1] / "accounts"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("accounts.backends.OIDCBackend", "accounts.users.backend.OIDCBackend"),
        (
            "accounts.middleware.OIDCSessionMiddleware",
            "accounts.sessions.middleware.OIDCSessionMiddleware",
        ),
        ("accounts.drf.BearerAuthentication", "accounts.api.drf.BearerAuthentication"),
        ("accounts.drf.ApiAccess", "accounts.api.drf.ApiAccess"),
        ("accounts.api_auth.api_view", "accounts.api.access.api_view"),
        ("accounts.api_auth.ApiViewMixin", "accounts.api.access.ApiViewMixin"),
        ("accounts.crypto.encrypt", "accounts.security.crypto.encrypt"),
        ("accounts.crypto.decrypt", "accounts.security.crypto.decrypt"),
    ],
)
def test_a_path_people_copied_still_names_the_same_object(old, new):
    assert import_string(old) is import_string(new)


def test_compatibility_modules_hold_nothing_but_the_names_they_keep():
    for name in ("backends", "middleware", "drf", "api_auth", "crypto"):
        tree = ast.parse((ACCOUNTS / f"{name}.py").read_text())
        kinds = {type(node).__name__ for node in tree.body[1:]}  # after the docstring
        assert kinds <= {"ImportFrom", "Assign"}, (name, kinds)
        assert ast.get_docstring(tree).startswith("Kept for compatibility"), name


def test_the_project_settings_name_classes_that_import():
    for path in [
        *settings.AUTHENTICATION_BACKENDS,
        *settings.MIDDLEWARE,
        *settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
        *settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"],
    ]:
        import_string(path)


def test_the_backend_path_stored_in_sessions_is_the_configured_one():
    """Sessions store ``_auth_user_backend``: a renamed path would sign everybody out."""
    assert settings.AUTHENTICATION_BACKENDS == ["accounts.backends.OIDCBackend"]


def _packages() -> list[Path]:
    return sorted(
        p.parent
        for p in ACCOUNTS.rglob("__init__.py")
        if "migrations" not in p.parts and p.parent.name != "commands"
    )


@pytest.mark.parametrize("package", _packages(), ids=lambda p: p.name)
def test_every_package_says_what_lives_there_and_what_it_may_import(package):
    module = importlib.import_module(".".join(package.relative_to(ACCOUNTS.parent).parts))
    doc = module.__doc__ or ""
    assert len(doc.splitlines()) >= 3, package
    assert "import" in doc, f"{package}: say which packages it may import"
