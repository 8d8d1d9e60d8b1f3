"""Provider requests and site time per steady-state sign-in: this project vs stock 5.0.2.

Starts the real dev IdP on loopback and signs in N times with each backend, side by side
in one run: this project's ``accounts.backends.OIDCBackend`` and stock mozilla-django-oidc
5.0.2's ``OIDCAuthenticationBackend`` (with PKCE and basic auth switched on so the dev IdP
accepts it). The dev IdP counts the requests it receives. The first sign-in of each
variant warms the caches and is not counted.

Targets for this project: 1 token request, 1 userinfo request (when enabled), 0 JWKS.

    .venv/bin/python bench/bench_signin.py [--signins 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="bench-signin-"))
os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR / 'bench.sqlite3'}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

SITE = "http://testserver"


def follow_to_site(browser, url: str, username: str) -> str:
    """Walk the IdP's redirects (logging in if asked) until it sends us back to the site."""
    for _ in range(20):
        if url.startswith(SITE):
            return url
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code == 200 and 'name="password"' in response.text:
            action = url  # the login form posts back to its own interaction URL
            response = browser.post(
                action,
                data={"username": username, "password": username},
                allow_redirects=False,
                timeout=10,
            )
        url = urljoin(url, response.headers["Location"])
    raise SystemExit("the IdP never redirected back to the site")


def sign_in(browser, username: str) -> float:
    """One sign-in from a fresh site session; return the site-side seconds of the callback."""
    from django.test import Client

    client = Client()
    start = client.get("/oidc/authenticate/")
    callback = follow_to_site(browser, start["Location"], username)
    parts = urlsplit(callback)
    began = time.perf_counter()
    response = client.get(f"{parts.path}?{parts.query}")
    elapsed = time.perf_counter() - began
    if response.status_code != 302 or "_auth_user_id" not in client.session:
        raise SystemExit(f"sign-in failed: {response.status_code}")
    return elapsed


def delta(before: dict, after: dict) -> dict[str, int]:
    return {
        "token": after["token"]["authorization_code"] - before["token"]["authorization_code"],
        "userinfo": after["userinfo"] - before["userinfo"],
        "jwks": after["jwks"] - before["jwks"],
        "discovery": after["discovery"] - before["discovery"],
    }


def measure(idp, browser, n: int) -> tuple[dict[str, float], float]:
    sign_in(browser, "alice")  # warm-up: discovery, JWKS, IdP session
    before = idp.stats()
    times = [sign_in(browser, "alice") for _ in range(n)]
    counts = delta(before, idp.stats())
    return {k: v / n for k, v in counts.items()}, statistics.median(times)


def variant_settings(idp, metadata: dict, stock: bool) -> dict:
    common = {
        "OIDC_OP_ISSUER": idp.issuer,
        "OIDC_RP_CLIENT_ID": idp.client_id,
        "OIDC_RP_CLIENT_SECRET": idp.client_secret,
    }
    if not stock:
        endpoints = ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT")
        return {
            **common,
            "OIDC_OP_DISCOVERY": True,
            **{f"OIDC_OP_{name}_ENDPOINT": "" for name in endpoints},
        }
    return {
        **common,
        "ROOT_URLCONF": "bench.stock_urls",
        "AUTHENTICATION_BACKENDS": ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"],
        "OIDC_OP_AUTHORIZATION_ENDPOINT": metadata["authorization_endpoint"],
        "OIDC_OP_TOKEN_ENDPOINT": metadata["token_endpoint"],
        "OIDC_OP_USER_ENDPOINT": metadata["userinfo_endpoint"],
        "OIDC_OP_JWKS_ENDPOINT": metadata["jwks_uri"],
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_USE_PKCE": True,
        "OIDC_TOKEN_USE_BASIC_AUTH": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signins", type=int, default=20)
    args = parser.parse_args()
    import django
    import requests

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings, setup_test_environment

    from tests.support.devidp import start_devidp

    setup_test_environment()
    call_command("migrate", verbosity=0)
    idp = start_devidp(site_url=SITE, workdir=WORKDIR)
    try:
        metadata = requests.get(idp.discovery_url, timeout=10).json()
        rows = []
        for name, stock in (("this project", False), ("stock mozilla-django-oidc 5.0.2", True)):
            with override_settings(**variant_settings(idp, metadata, stock)):
                browser = requests.Session()
                browser.trust_env = False
                counts, median = measure(idp, browser, args.signins)
            rows.append((name, counts, median))
    finally:
        idp.stop()
    print(f"{args.signins} steady-state sign-ins per variant against the dev IdP")
    print(
        f"{'variant':<34}{'token':>7}{'userinfo':>10}{'jwks':>7}{'discovery':>11}{'ms/callback':>13}"
    )
    for name, counts, median in rows:
        print(
            f"{name:<34}{counts['token']:>7.2f}{counts['userinfo']:>10.2f}{counts['jwks']:>7.2f}"
            f"{counts['discovery']:>11.2f}{median * 1000:>13.1f}"
        )
    ours = rows[0][1]
    ok = ours["token"] == 1 and ours["userinfo"] == 1 and ours["jwks"] == 0
    print(f"targets (1 token, 1 userinfo, 0 JWKS per sign-in): {'PASS' if ok else 'FAIL'}")
    print(f"callback time ratio this/stock: {rows[0][2] / rows[1][2]:.2f}")


if __name__ == "__main__":
    main()
