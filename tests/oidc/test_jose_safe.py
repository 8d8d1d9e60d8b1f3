"""``jose_safe.read_jws``: the size cap before decoding, and every decoding failure a refusal."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.oidc.jose_safe import MAX_TOKEN_BYTES, UnreadableToken, check_size, read_jws


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws(header: bytes, payload: bytes = b"{}") -> str:
    return f"{b64(header)}.{b64(payload)}.c2ln"


def test_a_well_formed_token_is_read():
    header, payload = read_jws(jws(b'{"alg":"RS256"}', b'{"sub":"a"}'))
    assert header == {"alg": "RS256"} and payload == {"sub": "a"}


@pytest.mark.parametrize(
    "token",
    [
        jws(b"[" * 1000),  # the review's header: RecursionError in json
        jws(b'{"alg":"RS256"}', b'{"a":' * 1500 + b"1" + b"}" * 1500),
        jws(b'{"alg":"RS256"}', b"1" * 5000),  # int too long to convert, and not an object
        jws(b'{"alg":"RS256","x":' + b"9" * 5000 + b"}"),
        jws(b"\xff\xfe"),  # not UTF-8
        jws(b'{"alg": 1}'),  # no string alg
        jws(b"[]"),
        "a.b",
        "!!!.???.***",
        "",
        None,
        b"bytes.are.not",
    ],
)
def test_unreadable_tokens_are_malformed(token):
    with pytest.raises(UnreadableToken) as refused:
        read_jws(token)
    assert refused.value.code == "malformed"
    assert refused.value.message == "The token could not be read."


def test_the_size_is_capped_before_any_decoding():
    token = "x" * (MAX_TOKEN_BYTES + 1)  # not even base64: refused for its size alone
    with pytest.raises(UnreadableToken) as refused:
        read_jws(token)
    assert refused.value.code == "too_large"
    assert check_size("x" * MAX_TOKEN_BYTES) == "x" * MAX_TOKEN_BYTES


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(header=st.binary(max_size=300), payload=st.binary(max_size=300), sig=st.text(max_size=40))
def test_any_bytes_are_read_or_refused_in_words(header, payload, sig):
    try:
        read_jws(f"{b64(header)}.{b64(payload)}.{sig}")
    except UnreadableToken as exc:
        assert exc.code in ("malformed", "too_large")


@given(header=json_values, payload=json_values, depth=st.integers(0, 3000))
def test_any_json_at_any_depth_is_read_or_refused_in_words(header, payload, depth):
    nested = "[" * depth + json.dumps(header) + "]" * depth
    try:
        read_jws(jws(nested.encode(), json.dumps(payload).encode()))
    except UnreadableToken as exc:
        assert exc.code in ("malformed", "too_large")
