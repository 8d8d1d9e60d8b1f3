"""`make run`: the site on 127.0.0.1:8000 (SQLite) and three dev IdPs, three organisations.

Acme (the provider ``default``, users in devidp/users.json) on localhost:9000, Globex
(``OIDC_PROVIDERS``, devidp/users-globex.json) on localhost:9001 and Initech (FAPI 2.0:
PAR, DPoP with nonces, private_key_jwt, ES256; devidp/users-initech.json) on
localhost:9002, each its own issuer, client and users. Migrates, starts all four, prints
the URLs and the demo logins, and stops them on Ctrl-C. Every setting can still be
overridden from the environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = os.environ.get("SITE_URL", "http://127.0.0.1:8000")
IDP_PORT = os.environ.get("DEVIDP_PORT", "9000")
ISSUER = f"http://localhost:{IDP_PORT}"
GLOBEX_PORT = os.environ.get("DEVIDP_GLOBEX_PORT", "9001")
GLOBEX_ISSUER = f"http://localhost:{GLOBEX_PORT}"
INITECH_PORT = os.environ.get("DEVIDP_INITECH_PORT", "9002")
INITECH_ISSUER = f"http://localhost:{INITECH_PORT}"
GROUPS = {
    "groups_allowlist": "editors,members,sso-staff,sso-superusers",
    "staff_groups": "sso-staff",
    "superuser_groups": "sso-superusers",
}

SITE_ENV = {
    "DJANGO_DEBUG": "1",
    "OIDC_OP_ISSUER": ISSUER,
    "OIDC_RP_CLIENT_ID": "django-site",
    "OIDC_RP_CLIENT_SECRET": "dev-client-secret-change-me",
    "OIDC_OP_LABEL": "Acme",
    "OIDC_OP_INTROSPECT": "1",  # opaque access tokens go to Acme's introspection
    "OIDC_OP_EMAIL_DOMAINS": "example.com",
    "OIDC_PROVIDERS": json.dumps(
        {
            "globex": {
                "label": "Globex",
                "issuer": GLOBEX_ISSUER,
                "client_id": "globex-site",
                "client_secret": "globex-secret-change-me",
                "email_domains": ["globex.example"],
                **GROUPS,
            },
            # FAPI 2.0: PAR, DPoP-bound tokens, private_key_jwt with the site's key (no secret)
            "initech": {
                "label": "Initech (FAPI 2.0)",
                "issuer": INITECH_ISSUER,
                "client_id": "initech-site",
                "profile": "fapi2",
                "token_auth_method": "private_key_jwt",
                "email_domains": ["initech.example"],
                **GROUPS,
            },
        }
    ),
    "OIDC_GROUPS_ALLOWLIST": "editors,members,sso-staff,sso-superusers",
    "OIDC_STAFF_GROUPS": "sso-staff",
    "OIDC_SUPERUSER_GROUPS": "sso-superusers",
    # Acme's staff meet the admin step-up: the admin wants acr "mfa" (the one-time code of
    # devidp/users.json); with a password session the dev IdP asks for the code only.
    "OIDC_ADMIN_ACR_VALUES": "mfa",
}


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # loopback only
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


ACME_ENV = {"DEVIDP_ORG_NAME": "Acme"}


def globex_env() -> dict[str, str]:
    """Globex: its own port, issuer, client, users and keys; a second client "partner-site"
    (redirect URI /oidc/callback/partner/) for a provider an operator adds in the admin."""
    extra = [
        {
            "client_id": "partner-site",
            "client_secret": "partner-secret-change-me",
            "callback_path": "/oidc/callback/partner/",
        }
    ]
    return {
        **os.environ,
        "DEVIDP_PORT": GLOBEX_PORT,
        "DEVIDP_ISSUER": GLOBEX_ISSUER,
        "DEVIDP_SITE_URL": SITE,
        "DEVIDP_CLIENT_ID": "globex-site",
        "DEVIDP_CLIENT_SECRET": "globex-secret-change-me",
        "DEVIDP_CALLBACK_PATH": "/oidc/callback/globex/",
        "DEVIDP_EXTRA_CLIENTS": json.dumps(extra),
        "DEVIDP_USERS_FILE": str(ROOT / "devidp" / "users-globex.json"),
        "DEVIDP_KEYS_FILE": str(ROOT / "devidp" / ".keys-globex.json"),
        "DEVIDP_ORG_NAME": "Globex",
    }


def initech_env() -> dict[str, str]:
    """Initech: oidc-provider's FAPI 2.0 profile; it fetches the site's /oidc/jwks.json."""
    return {
        **os.environ,
        "DEVIDP_PORT": INITECH_PORT,
        "DEVIDP_ISSUER": INITECH_ISSUER,
        "DEVIDP_SITE_URL": SITE,
        "DEVIDP_FAPI2": "1",
        "DEVIDP_TOKEN_AUTH_METHOD": "private_key_jwt",
        "DEVIDP_CLIENT_ID": "initech-site",
        "DEVIDP_CALLBACK_PATH": "/oidc/callback/initech/",
        "DEVIDP_USERS_FILE": str(ROOT / "devidp" / "users-initech.json"),
        "DEVIDP_KEYS_FILE": str(ROOT / "devidp" / ".keys-initech.json"),
        "DEVIDP_ORG_NAME": "Initech",
    }


def set_aside_rsa_key() -> None:
    """A key file generated before Initech existed signs RS256, which FAPI 2.0 refuses: move
    it aside once (dev only), so the site generates an EC P-256 key on first use."""
    generated = ROOT / "var" / "oidc-signing-keys.pem"
    if os.environ.get("OIDC_RP_SIGNING_KEY_FILE") or not generated.exists():
        return
    if _is_ec(generated):
        return
    generated.rename(generated.with_suffix(".rsa.bak"))
    print(f"  Moved the RS256 signing key aside to {generated.with_suffix('.rsa.bak')}.")


def _is_ec(path: Path) -> bool:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = path.read_text()
    start = text.index("-----BEGIN")
    key = serialization.load_pem_private_key(text[start:].encode(), password=None)
    return isinstance(key, ec.EllipticCurvePrivateKey)


def print_logins(title: str, issuer: str, users_file: str) -> None:
    users = json.loads((ROOT / "devidp" / users_file).read_text())
    print(f"\n  {title}: dev IdP {issuer}/  (username / password, groups)")
    for user in users:
        code = f"  one-time code {user['otp']}" if user.get("otp") else ""
        groups = ", ".join(user["groups"])
        print(f"    {user['username']:<8} / {user['password']:<8} {groups}{code}")


def main() -> None:
    env = {**SITE_ENV, **os.environ}
    python = sys.executable
    migrate = [python, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)
    set_aside_rsa_key()
    idp = subprocess.Popen(
        ["node", "devidp/server.js"],
        cwd=ROOT,
        env={**os.environ, "DEVIDP_PORT": IDP_PORT, "DEVIDP_SITE_URL": SITE, **ACME_ENV},
    )
    globex = subprocess.Popen(["node", "devidp/server.js"], cwd=ROOT, env=globex_env())
    initech = subprocess.Popen(["node", "devidp/server.js"], cwd=ROOT, env=initech_env())
    host_port = SITE.split("://", 1)[1]
    site = subprocess.Popen([python, "manage.py", "runserver", host_port], cwd=ROOT, env=env)
    processes = (site, idp, globex, initech)
    try:
        wait_for(f"{ISSUER}/.well-known/openid-configuration")
        wait_for(f"{GLOBEX_ISSUER}/.well-known/openid-configuration")
        wait_for(f"{INITECH_ISSUER}/.well-known/openid-configuration")
        wait_for(f"{SITE}/healthz")
        # Shared Signals: Acme's transmitter pushes to the site (its streams live in memory).
        stream = [python, "manage.py", "ssf_stream", "create", "--site-url", SITE]
        subprocess.run(stream, cwd=ROOT, env=env, check=False)
        print(f"\n  Site:    {SITE}/\n  Admin:   {SITE}/admin/")
        print(f"  Signals: {ISSUER}/__dev/ (disable a user, revoke their sessions)")
        print_logins("Acme (provider default)", ISSUER, "users.json")
        print_logins("Globex (provider globex)", GLOBEX_ISSUER, "users-globex.json")
        print_logins("Initech (provider initech, FAPI 2.0)", INITECH_ISSUER, "users-initech.json")
        print("\n  Ctrl-C stops all four.\n", flush=True)
        site.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
