"""FAPI 2.0 against the real dev IdP: oidc-provider with ``features.fapi`` profile 2.0.

The dev IdP requires pushed authorization requests, DPoP-bound tokens with a server nonce
on every proof, ``private_key_jwt`` assertions signed PS256/ES256, and signs ES256 ID
tokens (devidp/server.js, ``DEVIDP_FAPI2=1``). The site is its provider ``default`` with
``OIDC_FAPI2=1``. The last tests show that the provider itself refuses a request without
a proof, with a replayed proof, and a bound token sent as Bearer: so the site's passes
above mean something.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from accounts.models import OIDCSession
from accounts.oidc import dpop, signing_keys
from accounts.oidc.client_auth import ASSERTION_TYPE, client_assertion
from accounts.sessions import token_store
from tests.sessions.test_refresh_concurrency import expire_access_token, session_key
from tests.support.devidp import (
    INITECH_USERS_FILE,
    DevIdP,
    fapi2_env,
    load_demo_users,
    start_devidp,
)
from tests.support.signin import login_form_action, new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]

PARALLEL = 20


@pytest.fixture(scope="module")
def fapi_keys(tmp_path_factory) -> dict[str, str]:
    """One signing key and one DPoP key for the module: the IdP caches the site's JWKS."""
    folder = tmp_path_factory.mktemp("fapi-keys")
    return {"signing": str(folder / "site-keys.pem"), "dpop": str(folder / "dpop.pem")}


@pytest.fixture(scope="module")
def fapi_idp(live_server, tmp_path_factory) -> Iterator[DevIdP]:
    idp = start_devidp(
        site_url=live_server.url,
        workdir=tmp_path_factory.mktemp("devidp-fapi2"),
        extra_env=fapi2_env(),
        users=INITECH_USERS_FILE,
    )
    yield idp
    idp.stop()


@pytest.fixture
def fapi_site(fapi_idp: DevIdP, fapi_keys, settings) -> DevIdP:
    """The site's provider ``default`` is the FAPI 2.0 dev IdP; no client secret at all."""
    fapi_idp.set_users(load_demo_users(INITECH_USERS_FILE))
    settings.OIDC_OP_ISSUER = fapi_idp.issuer
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT", "INTROSPECTION", "PAR"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")
    settings.OIDC_OP_DISCOVERY = True
    settings.OIDC_FAPI2 = True
    settings.OIDC_RP_CLIENT_ID = fapi_idp.client_id
    settings.OIDC_RP_CLIENT_SECRET = ""
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    settings.OIDC_RP_SIGN_ALGO = ["PS256", "ES256", "EdDSA"]
    settings.OIDC_RP_SIGNING_KEY_FILE = fapi_keys["signing"]
    settings.OIDC_DPOP_KEY_FILE = fapi_keys["dpop"]
    settings.OIDC_GROUPS_ALLOWLIST = ["members", "sso-staff"]
    settings.OIDC_GROUPS_PREFIX = ""
    settings.OIDC_SCIM_URL = ""
    if not signing_keys.key_file().exists():
        signing_keys.rotate()  # EC P-256: a FAPI 2.0 provider is configured
    dpop.create_key_file(dpop.key_file())  # once: a second call keeps the first key
    dpop.forget_key()
    fapi_idp.reset_stats()
    return fapi_idp


def test_the_dev_idp_is_in_fapi2_mode(fapi_site):
    metadata = requests.get(fapi_site.discovery_url, timeout=10).json()
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["id_token_signing_alg_values_supported"] == ["ES256"]  # its keys: EC
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    assert signing_keys.signing_key().alg == "ES256"


def test_sign_in_pushes_the_request_and_gets_dpop_bound_tokens(fapi_site, live_server):
    http = new_session()
    first = http.get(f"{live_server.url}/oidc/authenticate/", allow_redirects=False, timeout=10)
    query = parse_qs(urlsplit(first.headers["Location"]).query)
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
    sign_in_with_requests(live_server.url, "peter", session=http)
    me = http.get(f"{live_server.url}/api/me/", timeout=10).json()
    assert (me["username"], me["iss"]) == ("peter", fapi_site.issuer)
    stats = fapi_site.stats()
    assert stats["token"]["authorization_code"] == 1
    assert stats["userinfo"] == 1  # answered to the bound token with a proof
    row = OIDCSession.objects.get(session_key=session_key(http, live_server.url))
    assert row.refresh_token


def test_a_plain_authorization_request_is_refused_by_the_provider(fapi_site, live_server):
    """The provider requires PAR: the site's pushed requests above are not optional."""
    answer = new_session().get(
        f"{fapi_site.issuer}/auth",
        params={
            "client_id": fapi_site.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": f"{live_server.url}/oidc/callback/",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
        },
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code in (302, 303, 400)
    text = html.unescape(answer.headers.get("Location", "") + answer.text)
    assert "pushed" in text.lower() or "request_uri" in text


def test_twenty_parallel_requests_after_expiry_refresh_once_with_dpop(fapi_site, live_server):
    http = sign_in_with_requests(live_server.url, "peter", next_url="/api/me/")
    key = session_key(http, live_server.url)
    before = OIDCSession.objects.get(session_key=key)
    expire_access_token(key)
    fapi_site.reset_stats()

    def get_me(_: int) -> requests.Response:
        return http.get(f"{live_server.url}/api/me/", timeout=30, allow_redirects=False)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(pool.map(get_me, range(PARALLEL)))
    assert [a.status_code for a in answers] == [200] * PARALLEL, [a.text[:200] for a in answers]
    stats = fapi_site.stats()
    assert stats["token"]["refresh_token"] == 1, stats
    assert not any(stats["token_errors"].values()), stats
    after = OIDCSession.objects.get(session_key=key)
    assert token_store.read(after, "refresh_token") != token_store.read(before, "refresh_token")
    assert after.access_expires_at.timestamp() > time.time() + 60


def _form_fields(page: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1) if value else "")
    return fields


def test_rp_initiated_logout_ends_both_sessions(fapi_site, live_server):
    http = sign_in_with_requests(live_server.url, "milton")
    page = http.get(f"{live_server.url}/accounts/profile/", timeout=10)
    assert page.status_code == 200
    csrf = http.cookies.get("csrftoken")
    confirm = http.post(
        f"{live_server.url}/oidc/logout/",
        headers={"X-CSRFToken": csrf, "Referer": f"{live_server.url}/accounts/profile/"},
        timeout=10,
    )
    assert confirm.url.startswith(f"{fapi_site.issuer}/session/end"), confirm.url
    action = re.search(r'<form[^>]*action="([^"]+)"', confirm.text).group(1)
    done = http.post(
        urljoin(confirm.url, html.unescape(action)), data=_form_fields(confirm.text), timeout=10
    )
    assert done.url.startswith(live_server.url), done.url
    assert http.get(f"{live_server.url}/api/me/", timeout=10).status_code == 401
    again = http.get(f"{live_server.url}/oidc/authenticate/", timeout=10)
    assert login_form_action(again) is not None  # the provider's session is gone too


def _refresh_form(fapi_site: DevIdP, refresh_token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": fapi_site.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(
            audience=fapi_site.issuer, client_id=fapi_site.client_id, fapi2=True
        ),
    }


def test_the_provider_refuses_no_proof_a_replayed_proof_and_bearer_use(fapi_site, live_server):
    http = sign_in_with_requests(live_server.url, "peter")
    row = OIDCSession.objects.get(session_key=session_key(http, live_server.url))
    refresh_token = token_store.read(row, "refresh_token")
    access_token = token_store.read(row, "access_token")
    token_url = f"{fapi_site.issuer}/token"
    raw = new_session()

    no_proof = raw.post(token_url, data=_refresh_form(fapi_site, refresh_token), timeout=10)
    assert no_proof.status_code in (400, 401), no_proof.text
    # oidc-provider says only "grant request is invalid"; the same refresh token with a
    # proof is accepted just below, so the missing proof is what was refused.
    assert no_proof.json()["error"] == "invalid_grant", no_proof.text

    nonce = dpop.remembered_nonce(token_url)
    assert nonce  # the site learnt the provider's nonce during sign-in
    proof = dpop.dpop_proof("POST", token_url, nonce=nonce)
    good = raw.post(
        token_url, data=_refresh_form(fapi_site, refresh_token), headers={"DPoP": proof}, timeout=10
    )
    assert good.status_code == 200, good.text
    assert good.json()["token_type"] == "DPoP"
    rotated = good.json()["refresh_token"]
    replay = raw.post(
        token_url, data=_refresh_form(fapi_site, rotated), headers={"DPoP": proof}, timeout=10
    )
    assert replay.status_code == 400, replay.text
    # The same request with a fresh proof is accepted: the replayed proof was the reason.
    fresh = dpop.dpop_proof("POST", token_url, nonce=nonce)
    accepted = raw.post(
        token_url, data=_refresh_form(fapi_site, rotated), headers={"DPoP": fresh}, timeout=10
    )
    assert accepted.status_code == 200, accepted.text

    userinfo = f"{fapi_site.issuer}/me"
    as_bearer = raw.get(userinfo, headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    assert as_bearer.status_code in (400, 401), as_bearer.text
    without_proof = raw.get(userinfo, headers={"Authorization": f"DPoP {access_token}"}, timeout=10)
    assert without_proof.status_code in (400, 401), without_proof.text


def make_run_initech(issuer: str) -> dict:
    """The Initech entry `make run` declares (scripts/dev.py), pointed at ``issuer``."""
    import importlib.util
    import json

    from tests.support.devidp import REPO_ROOT

    spec = importlib.util.spec_from_file_location("dev_script", REPO_ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    initech = json.loads(module.SITE_ENV["OIDC_PROVIDERS"])["initech"]
    return {**initech, "issuer": issuer}


@pytest.fixture
def initech_idp(live_server, fapi_keys, tmp_path, settings) -> Iterator[DevIdP]:
    from tests.support.devidp import INITECH_CLIENT_ID, INITECH_SLUG

    idp = start_devidp(
        site_url=live_server.url,
        workdir=tmp_path / "initech",
        extra_env=fapi2_env(
            client_id=INITECH_CLIENT_ID, callback_path=f"/oidc/callback/{INITECH_SLUG}/"
        ),
        users=INITECH_USERS_FILE,
    )
    settings.OIDC_PROVIDERS = {INITECH_SLUG: make_run_initech(idp.issuer)}
    settings.OIDC_RP_SIGNING_KEY_FILE = fapi_keys["signing"]
    settings.OIDC_DPOP_KEY_FILE = fapi_keys["dpop"]
    settings.OIDC_SCIM_URL = ""
    if not signing_keys.key_file().exists():
        signing_keys.rotate()
    dpop.create_key_file(dpop.key_file())
    dpop.forget_key()
    yield idp
    idp.stop()


def test_make_runs_initech_declaration_signs_in_through_fapi2(initech_idp, live_server):
    from accounts.checks import check_fapi2

    assert check_fapi2() == []
    http = new_session()
    form = http.get(f"{live_server.url}/oidc/authenticate/?provider=initech", timeout=10)
    action = login_form_action(form)
    assert action is not None, form.text[:300]
    done = http.post(action, data={"username": "peter", "password": "peter"}, timeout=10)
    assert done.url.startswith(live_server.url), done.text[:300]
    me = http.get(f"{live_server.url}/api/me/", timeout=10).json()
    assert (me["username"], me["provider"]) == ("peter", "initech")
    assert initech_idp.stats()["token"]["authorization_code"] == 1


def test_the_api_client_gets_dpop_bound_tokens_for_the_sites_api(fapi_site, live_server):
    """The README's calls: a nonce-demanding token endpoint, then the site's API with DPoP."""
    from tests.support.api_client import API_CLIENT_ID, API_CLIENT_SECRET
    from tests.support.dpop_client import DPoPClient

    client = DPoPClient()
    form = {
        "grant_type": "client_credentials",
        "scope": "api:read",
        "resource": f"{live_server.url}/api/",
    }
    answer = client.token(f"{fapi_site.issuer}/token", form, (API_CLIENT_ID, API_CLIENT_SECRET))
    assert answer["token_type"] == "DPoP"
    token = answer["access_token"]
    url = f"{live_server.url}/api/whoami/"
    response = client.get(url, token, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "machine"
    bearer = client.http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer.status_code == 401 and bearer.json()["reason"] == "dpop_bound_token"
