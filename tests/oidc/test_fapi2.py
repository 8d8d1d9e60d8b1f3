"""The FAPI 2.0 switch against the scripted provider: what a real FAPI 2.0 provider never sends.

An RS256 ID token, a missing or wrong RFC 9207 ``iss``, a token answer without
``expires_in``; the client assertion's ``aud`` and algorithm; the system checks and
``oidc_check``'s report of the provider's metadata.
"""

from __future__ import annotations

import html
from io import StringIO
from urllib.parse import urlencode

import jwt
import pytest
from django.core import checks
from django.core.management import CommandError, call_command

from accounts.checks import check_fapi2
from accounts.models import OIDCSession
from accounts.oidc import dpop, signing_keys
from accounts.oidc.fapi2 import fapi2_requirements
from tests.support.fakeop import SigningKey
from tests.support.fapiop import FapiOP, finish_pushed, start_pushed
from tests.support.scripted_signin import USERINFO_CLAIMS, unverified_claims

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def fapi2_op(fapi_op: FapiOP, settings, tmp_path) -> FapiOP:
    """The default provider under FAPI 2.0: private_key_jwt with an EC key, no secret."""
    settings.OIDC_FAPI2 = True
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    settings.OIDC_RP_CLIENT_SECRET = ""
    settings.OIDC_RP_SIGN_ALGO = ["PS256", "ES256", "EdDSA"]
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "site-keys.pem")
    signing_keys.rotate()
    fapi_op.keys = [SigningKey.ec()]
    return fapi_op


def answer(op: FapiOP, id_token: str, **extra) -> None:
    body = {"access_token": "at-1", "token_type": "DPoP", "refresh_token": "rt-1", **extra}
    body["id_token"] = id_token
    op.script["/token"] = lambda headers, form: (200, body, "application/json", {})
    claims = unverified_claims(id_token)
    info = {k: claims[k] for k in USERINFO_CLAIMS if k in claims}
    op.script["/me"] = lambda headers, form: (200, info, "application/json", {})


def callback(client, op, state: str, **iss):
    params = {"code": "c", "state": state, **iss}
    return client.get(f"/oidc/callback/?{urlencode(params)}")


def test_a_fapi2_sign_in_pushes_binds_and_asserts_to_the_issuer(client, fapi2_op):
    query, form = start_pushed(client, fapi2_op)
    assert set(query) == {"client_id", "request_uri"}  # PAR although use_par is auto
    assert form["dpop_jkt"] == dpop.dpop_key().jkt
    assert form["code_challenge_method"] == "S256"
    par_assertion = form["client_assertion"]
    assert jwt.decode(par_assertion, options={"verify_signature": False})["aud"] == fapi2_op.issuer
    # The token answer has no expires_in: accepted, the ID token's exp stands in.
    answer(fapi2_op, fapi2_op.id_token(nonce=form["nonce"]))
    response = finish_pushed(client, fapi2_op, form, answer=False)
    assert response.status_code == 302, text_of(response)[:600]
    (token_form,) = [f for f in fapi2_op.forms if f.get("grant_type") == "authorization_code"]
    assertion = token_form["client_assertion"]
    assert jwt.get_unverified_header(assertion)["alg"] == "ES256"
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert claims["aud"] == fapi2_op.issuer and isinstance(claims["aud"], str)
    assert "client_secret" not in token_form and not token_form["_authorization"]
    assert len(fapi2_op.proofs("/token")) == 1
    assert OIDCSession.objects.get().access_expires_at is not None


def test_an_rs256_id_token_is_refused_even_when_the_settings_list_rs256(client, fapi2_op, settings):
    settings.OIDC_RP_SIGN_ALGO = ["RS256", "ES256"]  # a system-check error, refused anyway
    rsa_key = SigningKey.rsa()
    fapi2_op.keys = [fapi2_op.keys[0], rsa_key]
    _, form = start_pushed(client, fapi2_op)
    answer(fapi2_op, fapi2_op.sign(fapi2_op.claims(nonce=form["nonce"]), key=rsa_key))
    response = finish_pushed(client, fapi2_op, form, answer=False)
    assert response.status_code == 400
    assert "signing algorithm this site does not accept" in text_of(response)
    assert "_auth_user_id" not in client.session


def test_the_response_iss_is_required_under_fapi2(client, fapi2_op):
    _, form = start_pushed(client, fapi2_op)
    answer(fapi2_op, fapi2_op.id_token(nonce=form["nonce"]))
    # The metadata does not announce RFC 9207; FAPI 2.0 requires it all the same.
    response = callback(client, fapi2_op, form["state"])
    assert response.status_code == 400
    assert "did not name its provider" in text_of(response)
    assert fapi2_op.count("/token") == 0  # refused before the code is used


def test_a_wrong_response_iss_is_refused(client, fapi2_op):
    _, form = start_pushed(client, fapi2_op)
    response = callback(client, fapi2_op, form["state"], iss="https://evil.example")
    assert response.status_code == 400
    assert "came from a different provider" in text_of(response)


def test_an_rsa_site_key_cannot_sign_for_a_fapi2_provider(client, fapi2_op, settings, tmp_path):
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "rsa.pem")
    settings.OIDC_FAPI2 = False  # written while no provider followed FAPI 2.0
    signing_keys.rotate()
    settings.OIDC_FAPI2 = True
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 503
    assert "cannot be used with a FAPI 2.0 identity provider" in text_of(response)
    assert check_fapi2()[0].id == "accounts.E023"


def test_without_fapi2_the_assertion_audience_stays_the_token_endpoint(client, fapi2_op, settings):
    settings.OIDC_FAPI2 = False
    settings.OIDC_USE_PAR = "1"
    _, form = start_pushed(client, fapi2_op)
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert claims["aud"] == f"{fapi2_op.issuer}/token"
    assert "dpop_jkt" not in form


def test_checks_pass_for_a_well_configured_fapi2_provider(fapi2_op):
    assert check_fapi2() == []


def test_checks_refuse_a_client_secret_and_other_algorithms(fapi2_op, settings):
    settings.OIDC_TOKEN_AUTH_METHOD = "client_secret_basic"
    settings.OIDC_RP_SIGN_ALGO = ["RS256", "ES256"]
    found = check_fapi2()
    assert [e.id for e in found] == ["accounts.E021", "accounts.E022"]
    assert found[0] == checks.Error(
        "OIDC_FAPI2: FAPI 2.0 needs private_key_jwt, and the client authenticates with "
        "client_secret_basic (a client secret).",
        hint="Set the token_auth_method (OIDC_TOKEN_AUTH_METHOD) to private_key_jwt and "
        "register this site's /oidc/jwks.json for the client at the provider.",
        id="accounts.E021",
    )
    assert "also name RS256" in found[1].msg


def test_checks_name_a_declared_fapi2_provider_with_a_secret(fapi2_op, settings):
    settings.OIDC_PROVIDERS = {
        "bank": {
            "issuer": "https://bank.example",
            "client_id": "c",
            "client_secret": "s",
            "profile": "fapi2",
        }
    }
    (error,) = check_fapi2()
    assert error.id == "accounts.E021" and error.msg.startswith("OIDC_PROVIDERS['bank']:")


def test_checks_refuse_an_unusable_dpop_key_and_a_bad_use_par(fapi2_op, settings, tmp_path):
    bad = tmp_path / "rsa-dpop.pem"
    bad.write_text(signing_keys.SiteKey(SigningKey.rsa().private, "k", "RS256", None).to_pem())
    settings.OIDC_DPOP_KEY_FILE = str(bad)
    settings.OIDC_USE_PAR = "sometimes"
    dpop.forget_key()
    found = check_fapi2()
    assert [e.id for e in found] == ["accounts.E020", "accounts.E024"]
    assert "must be an EC P-256 private key" in found[1].msg


def test_fapi2_requirements_name_each_one_met_or_missed():
    met = {
        "pushed_authorization_request_endpoint": "https://op/par",
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["PS256", "ES256"],
        "authorization_response_iss_parameter_supported": True,
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }
    assert all(ok for _name, ok, _detail in fapi2_requirements(met))
    missed = {**met, "id_token_signing_alg_values_supported": ["RS256"]}
    del missed["pushed_authorization_request_endpoint"]
    del missed["dpop_signing_alg_values_supported"]
    results = {name: (ok, detail) for name, ok, detail in fapi2_requirements(missed)}
    assert results["fapi2 par"] == (False, "no pushed_authorization_request_endpoint")
    assert results["fapi2 dpop"] == (False, "the metadata has no dpop_signing_alg_values_supported")
    assert results["fapi2 id token algs"][0] is False
    assert "RS256" in results["fapi2 id token algs"][1]
    assert results["fapi2 client auth"][0] is True


def test_oidc_check_reports_the_fapi2_requirements(fapi2_op):
    fapi2_op.extra_metadata = {}
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("oidc_check", stdout=out)
    text = out.getvalue()
    assert "fapi2 par" in text and "fapi2 response iss" in text
    line = next(line for line in text.splitlines() if "fapi2 response iss" in line)
    assert "FAIL" in line
