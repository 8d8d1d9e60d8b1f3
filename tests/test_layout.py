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


COMPATIBILITY_MODULES = ("backends", "middleware", "drf", "api_auth", "crypto")


def test_compatibility_modules_hold_nothing_but_the_names_they_keep():
    for name in COMPATIBILITY_MODULES:
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
    return sorted(p.parent for p in ACCOUNTS.rglob("__init__.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", _packages(), ids=lambda p: p.name)
def test_every_package_says_what_lives_there_and_what_it_may_import(package):
    module = importlib.import_module(".".join(package.relative_to(ACCOUNTS.parent).parts))
    doc = module.__doc__ or ""
    assert len(doc.splitlines()) >= 3, package
    assert "import" in doc, f"{package}: say which packages it may import"


def _module_file(module: str) -> Path | None:
    base = ACCOUNTS.parent / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _defined_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _imports_from_accounts(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("accounts"):
            yield node


def test_code_imports_each_name_from_the_module_that_defines_it():
    """No re-exports: ``from accounts.x import name`` finds ``name`` defined in ``x``."""
    compatibility = {ACCOUNTS / f"{name}.py" for name in COMPATIBILITY_MODULES}
    wrong = []
    for path in sorted(ACCOUNTS.rglob("*.py")):
        if "migrations" in path.parts or path in compatibility:
            continue  # migrations stay as written; the compatibility modules say what they are
        for node in _imports_from_accounts(path):
            defined = _defined_names(_module_file(node.module))
            for alias in node.names:
                submodule = _module_file(f"{node.module}.{alias.name}")
                if submodule is None and alias.name not in defined:
                    wrong.append(f"{path.relative_to(ACCOUNTS.parent)}: {node.module}.{alias.name}")
    assert wrong == []
