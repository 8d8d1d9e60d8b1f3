"""``manage.py oidc_check`` against the real dev IdP and against a scripted provider."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.diagnostics import config_describe, provider_check
from accounts.oidc.discovery import get_metadata
from tests.support.fakeop import CLIENT_SECRET


def check(*args: str) -> str:
    out = StringIO()
    call_command("oidc_check", *args, stdout=out, no_color=True)
    return out.getvalue()


def failing(*args: str) -> tuple[str, str]:
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("oidc_check", *args, stdout=out, no_color=True)
    return out.getvalue(), str(caught.value)


def line(output: str, name: str) -> str:
    """The row of a check (after PASS/FAIL) or of a setting, by its exact name."""
    for row in output.splitlines():
        words = row.split()
        if words[:1] in (["PASS"], ["FAIL"]):
            words = words[1:]
        if words[: len(name.split())] == name.split():
            return row
    raise AssertionError(f"no line for {name!r} in:\n{output}")


@pytest.fixture
def discovering_op(op, settings):
    """The scripted provider, found through discovery, answering client-credentials grants."""
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")
    settings.OIDC_OP_DISCOVERY = True
    op.answer_tokens()
    return op


@pytest.mark.devidp
@pytest.mark.django_db(transaction=True)
def test_every_check_passes_against_the_dev_idp(idp_site, settings):
    settings.OIDC_SYNC_SCOPE = "directory"

    output = check("--client-credentials")

    assert idp_site.issuer in line(output, "OIDC_OP_ISSUER")
    assert "All" in output and "checks passed" in output
    assert "PASS  issuer match" in output
    assert "PASS  client credentials" in output
    assert idp_site.client_secret not in output
    assert idp_site.stats()["token"]["client_credentials"] == 1


@pytest.mark.devidp
@pytest.mark.django_db(transaction=True)
def test_wrong_issuer_fails_with_a_line_that_says_why(idp_site, settings):
    # Same server, other spelling: discovery answers, but for another issuer.
    settings.OIDC_OP_ISSUER = idp_site.issuer.replace("localhost", "127.0.0.1")

    output, error = failing()

    assert "issuer match" in error
    row = line(output, "issuer match")
    assert row.split()[0] == "FAIL"
    assert row.endswith(
        f"the provider names itself '{idp_site.issuer}', "
        f"but OIDC_OP_ISSUER is '{settings.OIDC_OP_ISSUER}'"
    )


def test_scripted_provider_passes_with_client_credentials(discovering_op):
    output = check("--client-credentials")

    assert "PASS  jwks RS256" in output
    assert "PASS  token_endpoint" in output and "(HTTP " in line(output, "token_endpoint")
    assert "PASS  client credentials" in output
    assert discovering_op.forms[-1]["grant_type"] == "client_credentials"


def test_secrets_are_masked_in_the_configuration(discovering_op, settings):
    settings.OIDC_SCIM_TOKEN = "scim-secret-token"

    output = check()

    assert CLIENT_SECRET not in output and "scim-secret-token" not in output
    assert "OIDC_RP_CLIENT_SECRET" in line(output, "OIDC_RP_CLIENT_SECRET")
    assert dict(config_describe())["OIDC_RP_CLIENT_SECRET"] == "******** (set)"
    assert dict(config_describe())["OIDC_OP_TOKEN_ENDPOINT"] == "(not set)"


def test_algorithm_not_offered_by_the_provider_fails(discovering_op, settings):
    settings.OIDC_RP_SIGN_ALGO = ["RS512"]

    output, _ = failing()

    assert "RS512 not offered; the provider signs ID tokens with RS256, ES256" in line(
        output, "algorithms"
    )
    assert "FAIL  jwks RS512" in output


def test_unsupported_algorithm_is_refused(discovering_op, settings):
    settings.OIDC_RP_SIGN_ALGO = ["none"]

    output, _ = failing()

    assert "OIDC_RP_SIGN_ALGO must be some of ES256, ES384" in line(output, "algorithms")


def test_hmac_algorithm_passes_with_a_client_secret(discovering_op, settings):
    # HS256 is keyed with the client secret (accounts.oidc.tokens): no JWKS key is needed for it.
    discovering_op.extra_metadata = {"id_token_signing_alg_values_supported": ["RS256", "HS256"]}
    settings.OIDC_RP_SIGN_ALGO = ["HS256"]

    output = check("--client-credentials")

    assert "All" in output and "checks passed" in output
    assert "HS256 offered by the provider" in line(output, "algorithms")
    assert "not used: the algorithms are keyed with the client secret" in line(output, "jwks")
    assert ("GET", "/jwks") not in discovering_op.requests
    assert CLIENT_SECRET not in output


def test_hmac_and_rsa_algorithms_check_only_the_rsa_key(op, settings):
    settings.OIDC_RP_SIGN_ALGO = ["HS256", "RS256"]

    results = {r.name: r for r in provider_check()}

    assert all(r.ok for r in results.values()), results
    assert results["jwks RS256"].detail == "1 key(s) for RS256"
    assert "jwks HS256" not in results


def test_hmac_algorithm_not_offered_by_the_provider_fails(discovering_op, settings):
    settings.OIDC_RP_SIGN_ALGO = ["HS256"]

    output, _ = failing()

    assert "HS256 not offered; the provider signs ID tokens with RS256, ES256" in line(
        output, "algorithms"
    )


def test_hmac_algorithm_without_a_client_secret_fails(op, settings):
    settings.OIDC_RP_SIGN_ALGO = ["HS256"]
    settings.OIDC_RP_CLIENT_SECRET = ""

    results = {r.name: r for r in provider_check()}

    assert not results["algorithms"].ok
    assert results["algorithms"].detail == "HS256 needs OIDC_RP_CLIENT_SECRET: it is not set"


def test_discovery_is_fetched_live_not_from_the_cached_copy(discovering_op):
    get_metadata()  # sign-in cached the document; it would stand in while the provider is down
    discovering_op.discovery_down = True

    output, _ = failing()

    assert "provider_unavailable" in line(output, "discovery")


def test_issuer_mismatch_of_the_scripted_provider_stops_the_checks(discovering_op, settings):
    discovering_op.extra_metadata = {"issuer": "https://elsewhere.example"}

    output, error = failing()

    assert "PASS  discovery" in output
    assert line(output, "issuer match").endswith(
        "the provider names itself 'https://elsewhere.example', "
        f"but OIDC_OP_ISSUER is '{settings.OIDC_OP_ISSUER}'"
    )
    assert error.startswith("oidc_check: 1 of 4 checks failed: issuer match")


def test_unreachable_provider_fails_at_discovery(discovering_op, settings):
    settings.OIDC_OP_ISSUER = "http://127.0.0.1:9"

    output, error = failing()

    assert "FAIL  discovery" in output and "provider_unreachable" in line(output, "discovery")
    assert error.startswith("oidc_check: 1 of 3 checks failed: discovery")


def test_jwks_without_a_usable_key_fails(discovering_op):
    discovering_op.keys = []

    output, _ = failing()

    assert "no key for RS256 in 0 keys" in line(output, "jwks RS256")


def test_refused_client_credentials_grant_fails(discovering_op):
    discovering_op.token_answer = lambda form: (
        401,
        {"error": "unauthorized_client"},
        "application/json",
    )

    output, _ = failing("--client-credentials")

    assert "grant refused (invalid_client)" in line(output, "client credentials")


def test_client_credentials_answer_without_a_token_fails(discovering_op):
    discovering_op.token_answer = lambda form: (200, {"token_type": "Bearer"}, "application/json")

    output, _ = failing("--client-credentials")

    assert "answer has no access_token" in line(output, "client credentials")


def test_missing_client_secret_fails(discovering_op, settings):
    settings.OIDC_RP_CLIENT_SECRET = ""

    output, _ = failing()

    assert "OIDC_RP_CLIENT_SECRET is not set" in line(output, "client")


def test_private_key_jwt_needs_a_usable_key_not_a_secret(discovering_op, settings, tmp_path):
    settings.OIDC_RP_CLIENT_SECRET = ""
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "keys.pem")
    (tmp_path / "keys.pem").write_text("not a key")
    output, _ = failing()
    assert "private_key_jwt: the signing key file" in line(output, "client")

    from accounts.oidc import signing_keys

    (tmp_path / "keys.pem").unlink()
    fresh, _ = signing_keys.rotate()
    assert f"private_key_jwt with key {fresh.kid} (RS256)" in line(check(), "client")


def test_configured_endpoints_without_discovery_are_checked(op):
    results = {r.name: r for r in provider_check()}

    assert results["discovery"].detail == "off: using the configured endpoints"
    assert results["userinfo_endpoint"].ok and results["end_session_endpoint"].ok
    assert "provider publishes no list" in results["algorithms"].detail
