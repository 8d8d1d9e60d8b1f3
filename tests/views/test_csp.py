"""The Content-Security-Policy header: on every page, nonce scripts, no framing, the providers'
form targets, a report-only switch and a report endpoint."""

from __future__ import annotations

import json
import logging

import pytest
from django.template import loader
from django.test import Client

pytestmark = pytest.mark.django_db


def policy(response, header: str = "Content-Security-Policy") -> dict[str, list[str]]:
    found = {}
    for part in response[header].split(";"):
        name, *values = part.split()
        found[name] = values
    return found


@pytest.mark.parametrize("path", ["/", "/accounts/signin/", "/members/", "/admin/login/", "/nope/"])
def test_every_page_has_the_policy(op, path):
    csp = policy(Client().get(path))
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp.get("script-src", []) + csp.get("style-src", [])
    assert csp["object-src"] == ["'none'"]


def test_form_action_is_the_site_and_the_providers_sign_in_and_out(op, op_b):
    csp = policy(Client().get("/accounts/signin/"))
    assert csp["form-action"][0] == "'self'"
    assert set(csp["form-action"][1:]) == {op.base_url, op_b.base_url}


def test_an_inline_style_carries_the_nonce_of_the_header(op):
    response = Client().get("/admin/login/")
    nonce = next(v for v in policy(response)["style-src"] if v.startswith("'nonce-"))
    assert f'<style nonce="{nonce[7:-1]}">' in response.content.decode()


def test_each_request_has_its_own_nonce_in_a_header_built_once(op):
    first, second = Client().get("/admin/login/"), Client().get("/admin/login/")
    nonces = [
        next(v for v in policy(r)["script-src"] if v.startswith("'nonce-")) for r in (first, second)
    ]
    assert nonces[0] != nonces[1]
    assert (
        first["Content-Security-Policy"].replace(nonces[0], nonces[1])
        == (second["Content-Security-Policy"])
    )
    assert f'nonce="{nonces[1][7:-1]}"' in second.content.decode()
    assert "nonce-" not in Client().get("/api/me/")["Content-Security-Policy"]  # none used


def test_the_header_is_what_django_csp_builds(op):
    from csp.utils import build_policy

    from accounts.views.csp import provider_form_origins

    response = Client().get("/admin/login/")
    nonce = next(v for v in policy(response)["script-src"] if v.startswith("'nonce-"))[7:-1]
    update = {"form-action": provider_form_origins()}
    assert response["Content-Security-Policy"] == build_policy(update=update, nonce=nonce)
    assert Client().get("/api/me/")["Content-Security-Policy"] == build_policy(update=update)


def test_a_provider_added_later_is_in_form_action_at_once(op, settings):
    assert "https://later.example" not in policy(Client().get("/"))["form-action"]
    settings.OIDC_PROVIDERS = {"later": {"issuer": "https://later.example", "client_id": "l"}}
    assert "https://later.example" in policy(Client().get("/"))["form-action"]


def test_the_500_page_has_no_inline_style_or_script():
    body = loader.get_template("500.html").render()
    assert "<style" not in body and "<script" not in body and "style=" not in body


def test_front_channel_logout_keeps_its_narrower_policy(op):
    response = Client().get("/oidc/frontchannel-logout/", {"iss": op.issuer, "sid": "s"})
    assert response["Content-Security-Policy"] == f"frame-ancestors {op.base_url}"


def test_the_report_only_switch(op, settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = None
    response = Client().get("/")
    assert "Content-Security-Policy" not in response
    assert policy(response, "Content-Security-Policy-Report-Only")["frame-ancestors"] == ["'none'"]


def test_the_report_endpoint_logs_once_per_directive_and_minute(op, caplog):
    caplog.set_level(logging.WARNING, logger="accounts.csp")
    report = {
        "csp-report": {
            "document-uri": "http://testserver/members/?code=secret",
            "effective-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js?token=abc",
        }
    }
    for _ in range(5):
        response = Client().post(
            "/csp-report/", json.dumps(report), content_type="application/csp-report"
        )
        assert response.status_code == 204
    lines = [r.getMessage() for r in caplog.records if "csp violation" in r.getMessage()]
    assert len(lines) == 1
    assert "directive=script-src-elem blocked=https://evil.example page=/members/" in lines[0]
    assert "secret" not in lines[0] and "abc" not in lines[0]


@pytest.mark.parametrize("body", [b"", b"[" * 5000, b"{}", b"x" * 20000, b'{"csp-report": 1}'])
def test_the_report_endpoint_never_fails(op, body):
    response = Client().post("/csp-report/", body, content_type="application/csp-report")
    assert response.status_code == 204
