"""Provider requests and RP CPU per steady-state sign-in: this project vs stock 5.0.2.

Starts the real dev IdP on loopback and signs in N times with each backend, interleaved
sign-in by sign-in in one run: this project's ``accounts.backends.OIDCBackend`` and stock
mozilla-django-oidc 5.0.2's ``OIDCAuthenticationBackend`` (with PKCE and basic auth
switched on so the dev IdP accepts it). The dev IdP counts the requests it receives. The
first sign-in of each variant warms the caches and is not counted.

The RP CPU of a sign-in is this process's CPU time (``time.process_time``) over the site's
two requests: the start (``/oidc/authenticate/``, a pushed authorization request here when
the provider offers PAR) and the callback (token request, ID token checks, userinfo, user,
session). The IdP runs in its own process and the browser's steps are outside the windows.

Targets for this project: 1 token request, 1 userinfo request (when enabled), 0 JWKS, and
RP CPU per sign-in <= 1.0x stock's (median of the interleaved sign-ins) for the same flow:
stock cannot push its authorization request, so the comparison runs this project with
``OIDC_USE_PAR=0`` too, and prints what the pushed request (on by default when the
provider offers it, as the dev IdP does) adds.

    .venv/bin/python bench/bench_signin.py [--signins 40]
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


def sign_in(browser, username: str) -> tuple[float, float, float]:
    """One sign-in from a fresh site session: (callback seconds, start CPU, callback CPU)."""
    from django.test import Client

    client = Client()
    cpu = time.process_time()
    start = client.get("/oidc/authenticate/")
    start_cpu = time.process_time() - cpu
    callback = follow_to_site(browser, start["Location"], username)
    parts = urlsplit(callback)
    began, cpu = time.perf_counter(), time.process_time()
    response = client.get(f"{parts.path}?{parts.query}")
    callback_cpu = time.process_time() - cpu
    elapsed = time.perf_counter() - began
    if response.status_code != 302 or "_auth_user_id" not in client.session:
        raise SystemExit(f"sign-in failed: {response.status_code}")
    return elapsed, start_cpu, callback_cpu


def delta(before: dict, after: dict) -> dict[str, int]:
    return {
        "token": after["token"]["authorization_code"] - before["token"]["authorization_code"],
        "userinfo": after["userinfo"] - before["userinfo"],
        "jwks": after["jwks"] - before["jwks"],
        "discovery": after["discovery"] - before["discovery"],
    }


def variant_settings(idp, metadata: dict, stock: bool, par: str = "auto") -> dict:
    common = {
        "OIDC_OP_ISSUER": idp.issuer,
        "OIDC_RP_CLIENT_ID": idp.client_id,
        "OIDC_RP_CLIENT_SECRET": idp.client_secret,
    }
    if not stock:
        endpoints = ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT")
        return {
            **common,
            "OIDC_USE_PAR": par,
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signins", type=int, default=40)
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
    names = ("this project", "this project without PAR", "stock mozilla-django-oidc 5.0.2")
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    counts: dict[str, dict[str, int]] = {}
    try:
        metadata = requests.get(idp.discovery_url, timeout=10).json()
        browsers = {}
        for name in names:
            browsers[name] = requests.Session()
            browsers[name].trust_env = False
        variants = {
            names[0]: override_settings(**variant_settings(idp, metadata, stock=False)),
            names[1]: override_settings(**variant_settings(idp, metadata, stock=False, par="0")),
            names[2]: override_settings(**variant_settings(idp, metadata, stock=True)),
        }
        for name in names:  # warm-up: discovery, JWKS, the IdP's session
            with variants[name]:
                sign_in(browsers[name], "alice")
        totals = dict.fromkeys(names)
        for _ in range(args.signins):  # interleaved: drifting load hits both alike
            for name in names:
                before = idp.stats()
                with variants[name]:
                    times[name].append(sign_in(browsers[name], "alice"))
                step = delta(before, idp.stats())
                totals[name] = {k: (totals[name] or {}).get(k, 0) + v for k, v in step.items()}
        counts = {name: totals[name] for name in names}
    finally:
        idp.stop()
    print(f"{args.signins} steady-state sign-ins per variant against the dev IdP, interleaved")
    print(
        f"{'variant':<34}{'token':>7}{'userinfo':>10}{'jwks':>7}{'discovery':>11}"
        f"{'ms/callback':>13}{'RP CPU ms: start':>18}{'callback':>10}{'total':>8}"
    )
    cpu = {}
    for name in names:
        per = {k: v / args.signins for k, v in counts[name].items()}
        wall, start_cpu, callback_cpu = (
            statistics.median(t[i] for t in times[name]) for i in range(3)
        )
        cpu[name] = statistics.median(t[1] + t[2] for t in times[name])
        print(
            f"{name:<34}{per['token']:>7.2f}{per['userinfo']:>10.2f}{per['jwks']:>7.2f}"
            f"{per['discovery']:>11.2f}{wall * 1000:>13.1f}{start_cpu * 1000:>18.2f}"
            f"{callback_cpu * 1000:>10.2f}{cpu[name] * 1000:>8.2f}"
        )
    ours = {k: v / args.signins for k, v in counts[names[0]].items()}
    ok = ours["token"] == 1 and ours["userinfo"] == 1 and ours["jwks"] == 0
    print(f"targets (1 token, 1 userinfo, 0 JWKS per sign-in): {'PASS' if ok else 'FAIL'}")
    ratio = cpu[names[1]] / cpu[names[2]]
    verdict = "PASS" if ratio <= 1.0 else "FAIL"
    print(f"RP CPU per sign-in this/stock, the same flow: {ratio:.2f} (target <= 1.00) {verdict}")
    with_par = cpu[names[0]] / cpu[names[2]]
    print(
        f"RP CPU per sign-in this/stock, with PAR (the dev IdP offers it): {with_par:.2f}; "
        f"PAR's own request: {(cpu[names[0]] - cpu[names[1]]) * 1000:.2f} ms"
    )
    return 0 if ok and ratio <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
