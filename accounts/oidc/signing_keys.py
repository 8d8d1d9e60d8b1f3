"""The site's own signing keys (for ``private_key_jwt``): the key file, rotation, the JWKS.

The key file holds one or more PEM private keys, newest first; each key may be preceded by
a ``created: <epoch seconds>`` line (RFC 7468 allows text outside the PEM boundaries). The
site signs with the newest key that has been published for ``OIDC_RP_SIGNING_KEY_DELAY``
seconds, so that a provider which cached the site's JWKS before a rotation still knows the
key; every key in the file is published at ``/oidc/jwks.json``.

When ``OIDC_RP_SIGNING_KEY_FILE`` is unset a key is generated on first use into
``GENERATED_KEY_FILE`` (git-ignored). Generation and rotation are safe with several
processes: a new file appears by ``link`` (only one creator wins) and a rotation rewrites
the file under an exclusive lock and replaces it atomically.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from accounts.conf import oidc_settings
from accounts.providers.registry import all_providers

GENERATED_KEY_FILE = Path(__file__).resolve().parents[2] / "var" / "oidc-signing-keys.pem"
_BLOCK = re.compile(
    r"(?:^created:\s*(?P<created>\d+(?:\.\d+)?)\s*\n)?"
    r"(?P<pem>-----BEGIN (?P<label>[A-Z ]+)-----\n.+?\n-----END (?P=label)-----)",
    re.MULTILINE | re.DOTALL,
)


class KeyFileError(Exception):
    """The key file cannot be read, holds no usable key, or cannot be created."""


@dataclass(frozen=True)
class SiteKey:
    """One private key of the site, with its RFC 7638 ``kid`` and signing algorithm."""

    private: Any
    kid: str
    alg: str
    created: float | None

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    def to_pem(self) -> str:
        pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        created = f"created: {int(self.created)}\n" if self.created is not None else ""
        return created + pem


def key_file() -> Path:
    configured = oidc_settings.OIDC_RP_SIGNING_KEY_FILE
    return Path(configured) if configured else GENERATED_KEY_FILE


def _thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: the required members, sorted, no whitespace, SHA-256."""
    members = ("crv", "kty", "x", "y") if public_jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: public_jwk[m] for m in members}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def site_key(private: Any, created: float | None) -> SiteKey:
    """Wrap a private key, refusing the kinds ``private_key_jwt`` cannot use."""
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 2048:
        alg, algorithm = "RS256", RSAAlgorithm
    elif isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        alg, algorithm = "ES256", ECAlgorithm
    else:
        raise KeyFileError("only RSA keys of 2048 bits or more and EC P-256 keys can sign")
    kid = _thumbprint(json.loads(algorithm.to_jwk(private.public_key())))
    return SiteKey(private=private, kid=kid, alg=alg, created=created)


def parse_keys(text: str) -> list[SiteKey]:
    """The keys of a key file's text, newest first; ``KeyFileError`` when there is none."""
    keys = []
    for match in _BLOCK.finditer(text):
        if "PRIVATE KEY" not in match["label"]:
            continue  # a certificate or public key next to the private key: not ours to use
        try:
            private = serialization.load_pem_private_key(match["pem"].encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"a private key cannot be read ({type(exc).__name__})") from exc
        created = float(match["created"]) if match["created"] else None
        keys.append(site_key(private, created))
    if not keys:
        raise KeyFileError("it holds no PEM private key")
    return keys


def new_key(now: float | None = None) -> SiteKey:
    """A new key: EC P-256 (ES256) while a provider follows FAPI 2.0, else RSA (RS256)."""
    if fapi2_in_use():
        private: Any = ec.generate_private_key(ec.SECP256R1())
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return site_key(private, float(int(now if now is not None else time.time())))


def fapi2_in_use() -> bool:
    """Whether any provider has profile fapi2 (whose assertions must not be RS256)."""
    return any(provider.fapi2 for provider in all_providers())


_cache: dict[str, Any] = {}


def load_keys() -> list[SiteKey]:
    """The site's keys, newest first, generated on first use when no file is configured."""
    path = key_file()
    if not path.exists() and not oidc_settings.OIDC_RP_SIGNING_KEY_FILE:
        _create(path, [new_key()])
    try:
        stat = path.stat()
        stamp = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = _cache.get("entry")
        if cached is None or cached[0] != stamp:
            # One assignment, so a thread never sees one file's stamp with another's keys.
            _cache["entry"] = cached = (stamp, parse_keys(path.read_text(encoding="ascii")))
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path} cannot be read ({type(exc).__name__})") from exc
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from exc
    return list(cached[1])


def signing_key(now: float | None = None) -> SiteKey:
    """The key that signs: the newest one published for long enough, else the oldest one."""
    keys = load_keys()
    now = time.time() if now is None else now
    delay = oidc_settings.OIDC_RP_SIGNING_KEY_DELAY
    for key in keys:
        if key.created is None or now - key.created >= delay:
            return key
    return keys[-1]


def public_jwks() -> dict[str, list[dict[str, Any]]]:
    """The JWKS of every key in the file: the signing key, a new one, the previous one."""
    return {"keys": [key.public_jwk() for key in load_keys()]}


def rotate(now: float | None = None) -> tuple[SiteKey, SiteKey | None]:
    """Put a new key in front; keep the key that signs now, drop any older one.

    Returns (new key, kept key). The new key signs once ``OIDC_RP_SIGNING_KEY_DELAY`` has
    passed; until then the kept one goes on signing and both are published.
    """
    path = key_file()
    with _locked(path):
        try:
            current = signing_key(now) if path.exists() else None
        except KeyFileError:
            if path.exists() and path.stat().st_size:
                raise  # never overwrite a key file nobody can read: say so instead
            current = None
        fresh = new_key(now)
        _write(path, [fresh, *([current] if current else [])])
    return fresh, current


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _temporary(path: Path, keys: list[SiteKey]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".keys-", suffix=".tmp", dir=path.parent)  # mode 0600
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("".join(key.to_pem() for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _create(path: Path, keys: list[SiteKey]) -> None:
    """Create the key file unless another process did first (``link`` fails if it exists)."""
    try:
        tmp = _temporary(path, keys)
    except OSError as exc:
        raise KeyFileError(f"{path} cannot be created ({type(exc).__name__})") from exc
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race: its key is the one everybody uses
    except OSError as exc:
        raise KeyFileError(f"{path} cannot be created ({type(exc).__name__})") from exc
    finally:
        os.unlink(tmp)


def _write(path: Path, keys: list[SiteKey]) -> None:
    os.replace(_temporary(path, keys), path)
