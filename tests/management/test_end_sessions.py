"""``manage.py end_sessions``: find one user, end all their sessions, say how many."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import OIDCSession
from tests.support.sessions import is_signed_in, signed_in_session

pytestmark = pytest.mark.django_db

ISSUER = "http://op.test"  # the OIDC_OP_ISSUER of tests/settings.py


def run(**options) -> str:
    out = StringIO()
    call_command("end_sessions", stdout=out, **options)
    return out.getvalue()


def session_of(username: str, subject: str, sid: str, issuer: str = ISSUER) -> Client:
    client = Client()
    signed_in_session(client, issuer=issuer, subject=subject, username=username, sid=sid)
    return client


@pytest.fixture
def people() -> dict[str, list[Client]]:
    return {
        "alice": [session_of("alice", "sub-alice", "s1"), session_of("alice", "sub-alice", "s2")],
        "bob": [session_of("bob", "sub-bob", "s3")],
    }


def assert_only_bob_left(people) -> None:
    assert not any(is_signed_in(client) for client in people["alice"])
    assert is_signed_in(people["bob"][0])
    assert list(OIDCSession.objects.values_list("subject", flat=True)) == ["sub-bob"]
    assert Session.objects.count() == 1


def test_by_username(people):
    assert run(username="alice") == "Ended 2 sessions of alice.\n"
    assert_only_bob_left(people)


def test_by_email_in_any_case(people):
    assert run(email="ALICE@example.com") == "Ended 2 sessions of alice.\n"
    assert_only_bob_left(people)


def test_by_issuer_and_subject(people):
    assert run(issuer=ISSUER, subject="sub-alice") == "Ended 2 sessions of alice.\n"
    assert_only_bob_left(people)


def test_subject_alone_means_the_configured_issuer(people):
    assert run(subject="sub-bob") == "Ended 1 session of bob.\n"
    assert all(is_signed_in(client) for client in people["alice"])
    assert not is_signed_in(people["bob"][0])


def test_every_identity_of_the_user_is_signed_out(people):
    other_provider = session_of("alice", "alice-elsewhere", "s9", issuer="http://other.test")
    assert run(subject="sub-alice") == "Ended 3 sessions of alice.\n"
    assert not is_signed_in(other_provider)


def test_a_password_session_ends_too_when_password_sign_in_is_on(people, settings):
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "django.contrib.auth.backends.ModelBackend",
    ]
    from django.contrib.auth import get_user_model

    breakglass = Client()
    breakglass.force_login(
        get_user_model().objects.get(username="alice"),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    assert run(username="alice") == "Ended 3 sessions of alice.\n"
    assert not is_signed_in(breakglass)
    assert_only_bob_left(people)


def test_a_user_without_sessions_gets_zero(people, django_user_model):
    django_user_model.objects.create(username="carol")
    assert run(username="carol") == "Ended 0 sessions of carol.\n"
    assert OIDCSession.objects.count() == 3


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({}, "Say whose sessions"),
        ({"issuer": ISSUER}, "--issuer needs --subject"),
        ({"username": "alice", "email": "alice@example.com"}, "only one"),
        ({"username": "nobody"}, "No user with username 'nobody'"),
        ({"email": "nobody@example.com"}, "No user with email"),
        ({"subject": "sub-nobody"}, "No user with subject 'sub-nobody'"),
        ({"issuer": "http://other.test", "subject": "sub-alice"}, "No user with subject"),
    ],
)
def test_nothing_ends_unless_exactly_one_user_is_named(people, options, words):
    with pytest.raises(CommandError, match=words):
        run(**options)
    assert OIDCSession.objects.count() == 3
    assert Session.objects.count() == 3


def test_an_email_shared_by_several_users_is_refused(people, django_user_model):
    django_user_model.objects.create(username="alice2", email="alice@example.com")
    with pytest.raises(CommandError, match="Several users"):
        run(email="alice@example.com")
    assert OIDCSession.objects.count() == 3


def test_the_command_line_parses_the_options(people):
    out = StringIO()
    call_command("end_sessions", "--username", "bob", stdout=out)
    assert out.getvalue() == "Ended 1 session of bob.\n"
