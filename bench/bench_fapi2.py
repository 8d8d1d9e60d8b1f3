"""FAPI 2.0 costs, side by side: the RP's CPU per sign-in, and DPoP against Bearer at the API.

Starts two dev IdPs: a plain one (client secret, no PAR, bearer tokens) and one in
oidc-provider's FAPI 2.0 mode (PAR required, DPoP with nonces, private_key_jwt, ES256),
and runs the site in this process (SQLite in a temporary folder) with Django's test client,
so that only the site's own work is timed (``time.process_time`` around the site's views;
the IdPs are other processes, the "browser" is not timed). Rounds are interleaved so that
machine noise hits both variants alike. Prints:

- CPU ms per sign-in: FAPI 2.0 (PAR + DPoP + private_key_jwt) and plain; the ratio (target
  <= 1.3: one key load per process, proofs cheap);
- ``GET /api/whoami/`` requests per CPU second with a DPoP-bound token and its proof, and
  with a bearer token; the ratio DPoP/bearer (target >= 0.85).

    .venv/bin/python bench/bench_fapi2.py [--signins 30] [--requests 600] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.devidp import (  # noqa: E402
    INITECH_USERS_FILE,
    fapi2_env,
    free_port,
    start_devidp,
)
from tests.support.dpop_client import DPoPClient  # noqa: E402
from tests.support.signin import login_form_action, new_session  # noqa: E402

SITE = "http://testserver"
API_CLIENT = ("api-client", "api-client-secret")


def serve_jwks(holder: dict) -> int:
    """The site's /oidc/jwks.json for the FAPI 2.0 IdP (the site itself runs in-process)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(holder["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def setup_django(workdir: Path, plain, fapi) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "1",
            "DJANGO_SECRET_KEY": "bench-fapi2-secret-key-not-for-production-0123",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DATABASE_URL": f"sqlite:///{workdir / 'site.sqlite3'}",
            "OIDC_OP_ISSUER": plain.issuer,
            "OIDC_RP_CLIENT_ID": plain.client_id,
            "OIDC_RP_CLIENT_SECRET": plain.client_secret,
            "OIDC_USE_PAR": "0",  # the plain sign-in: a classic authorization request
            "OIDC_RP_SIGNING_KEY_FILE": str(workdir / "keys.pem"),
            "OIDC_DPOP_KEY_FILE": str(workdir / "dpop.pem"),
            "OIDC_PROVIDERS": json.dumps(
                {
                    "initech": {
                        "issuer": fapi.issuer,
                        "client_id": fapi.client_id,
                        "profile": "fapi2",
                        "token_auth_method": "private_key_jwt",
                    }
                }
            ),
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.oidc import dpop, signing_keys

    call_command("migrate", verbosity=0)
    signing_keys.rotate()  # EC P-256: a FAPI 2.0 provider is configured
    dpop.create_key_file(dpop.key_file())


def sign_in_cpu(provider: str, browser, username: str) -> float:
    """One sign-in; the CPU seconds the site spent (its two views, provider calls included)."""
    from django.test import Client

    client = Client()
    started = time.process_time()
    start = client.get("/oidc/authenticate/", {"provider": provider})
    cpu = time.process_time() - started
    assert start.status_code == 302, start.content[:300]
    url = start["Location"]
    while not url.startswith(SITE):
        answer = browser.get(url, allow_redirects=False, timeout=10)
        if answer.status_code == 200 and login_form_action(answer):
            answer = browser.post(
                login_form_action(answer),
                data={"username": username, "password": username},
                allow_redirects=False,
                timeout=10,
            )
        url = urljoin(answer.url, answer.headers["Location"])
    parts = urlsplit(url)
    started = time.process_time()
    done = client.get(f"{parts.path}?{parts.query}")
    cpu += time.process_time() - started
    assert done.status_code == 302 and "_auth_user_id" in client.session, done.content[:500]
    return cpu


def api_cpu(headers_list: list[dict[str, str]]) -> float:
    from django.test import Client

    client = Client()
    started = time.process_time()
    for headers in headers_list:
        answer = client.get("/api/whoami/", **headers)
        assert answer.status_code == 200, answer.content[:300]
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signins", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-fapi2-"))
    holder: dict = {"jwks": {"keys": []}}
    jwks_port = serve_jwks(holder)
    plain = start_devidp(site_url=SITE, workdir=workdir / "plain", access_token_ttl=3600)
    env = {
        **fapi2_env(client_id="initech-site", callback_path="/oidc/callback/initech/"),
        "DEVIDP_CLIENT_JWKS_URI": f"http://127.0.0.1:{jwks_port}/oidc/jwks.json",
    }
    fapi = start_devidp(
        site_url=SITE, workdir=workdir / "fapi", extra_env=env, users=INITECH_USERS_FILE
    )
    try:
        setup_django(workdir, plain, fapi)
        from accounts.oidc import signing_keys

        holder["jwks"] = signing_keys.public_jwks()
        run(args, plain, fapi)
    finally:
        plain.stop()
        fapi.stop()


def run(args, plain, fapi) -> None:
    browsers = {"default": new_session(), "initech": new_session()}
    users = {"default": "alice", "initech": "peter"}
    for provider in browsers:  # warm-up: keys loaded, metadata and JWKS cached
        sign_in_cpu(provider, browsers[provider], users[provider])
    cpu: dict[str, list[float]] = {"default": [], "initech": []}
    per_round = max(1, args.signins // args.rounds)
    for _ in range(args.rounds):
        for provider in browsers:
            for _ in range(per_round):
                cpu[provider].append(sign_in_cpu(provider, browsers[provider], users[provider]))
    fapi_ms = statistics.median(cpu["initech"]) * 1000
    plain_ms = statistics.median(cpu["default"]) * 1000
    print(
        f"sign-in RP CPU (median of {len(cpu['initech'])}): FAPI 2.0 {fapi_ms:.1f} ms, "
        f"plain {plain_ms:.1f} ms"
    )
    print(f"FAPI 2.0 / plain sign-in RP CPU: {fapi_ms / plain_ms:.2f} (target <= 1.3)")

    client = DPoPClient()
    form = {"grant_type": "client_credentials", "scope": "api:read", "resource": f"{SITE}/api/"}
    bearer = (
        new_session()
        .post(f"{plain.issuer}/token", data=form, auth=API_CLIENT, timeout=10)
        .json()["access_token"]
    )
    bound = client.token(f"{plain.issuer}/token", form, API_CLIENT)["access_token"]
    url = f"{SITE}/api/whoami/"
    rates: dict[str, list[float]] = {"dpop": [], "bearer": []}
    api_cpu([{"HTTP_AUTHORIZATION": f"Bearer {bearer}"}])  # warm-up: JWKS, user row
    api_cpu([{"HTTP_AUTHORIZATION": f"DPoP {bound}", "HTTP_DPOP": client.proof("GET", url, bound)}])
    batch = 20  # small interleaved batches: noise from other processes hits both alike
    for _ in range(args.rounds):
        for _ in range(max(1, args.requests // batch // args.rounds)):
            proofs = [client.proof("GET", url, bound) for _ in range(batch)]  # not timed
            dpop_headers = [
                {"HTTP_AUTHORIZATION": f"DPoP {bound}", "HTTP_DPOP": proof} for proof in proofs
            ]
            rates["dpop"].append(batch / api_cpu(dpop_headers))
            bearer_headers = [{"HTTP_AUTHORIZATION": f"Bearer {bearer}"}] * batch
            rates["bearer"].append(batch / api_cpu(bearer_headers))
    dpop_rate = statistics.median(rates["dpop"])
    bearer_rate = statistics.median(rates["bearer"])
    print(f"API requests per CPU second: DPoP {dpop_rate:.0f}, Bearer {bearer_rate:.0f}")
    print(f"DPoP / Bearer API throughput: {dpop_rate / bearer_rate:.2f} (target >= 0.85)")


if __name__ == "__main__":
    main()
