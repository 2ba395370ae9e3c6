"""`logs.redact`: each kind of secret it knows, what it leaves alone, and its edges."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.logs import redact, scrub

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(("text", "expected"), [
    # The token goes, then the header's value pattern takes the scheme word too.
    ("Authorization: Bearer abc.def-ghi", "Authorization: [redacted] [redacted]"),
    ("bearer   tok3n", "bearer   [redacted]"),
    (f"token {JWT} end", "token [redacted] end"),
    ("key sk-proj_abcdefgh1234", "key [redacted]"),
    ('{"access_token": "secret-value"}', '{"access_token": "[redacted]"}'),
    ('{"refresh_token":"rt_12345678"}', '{"refresh_token":"[redacted]"}'),
    ("grant_type=authorization_code&code=abcd1234&code_verifier=vvvv1234",
     "grant_type=authorization_code&code=[redacted]&code_verifier=[redacted]"),
    ("x-api-key: k-1234567", "x-api-key: [redacted]"),
    ("id_token=abcd1234", "id_token=[redacted]"),
    ('{"api_key": "abcd1234"}', '{"api_key": "[redacted]"}'),
    ("AUTHORIZATION=abcd1234", "AUTHORIZATION=[redacted]"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [redacted] [redacted]"),
    ('{"authorization": "basic dXNlcjpwYXNz"}', '{"authorization": "[redacted] [redacted]"}'),
])
def test_each_kind_of_secret_is_replaced_and_its_name_kept(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "POST /v1/chat/completions 200 model=gpt-5.4",
    '{"model": "gpt-5.4", "messages": [{"role": "user", "content": "Hello, code!"}]}',
    "code=abc",  # shorter than a secret: a status code, not an OAuth code
    "sk-short",
])
def test_ordinary_text_passes(text: str) -> None:
    assert redact(text) == text


def test_a_word_after_bearer_is_taken_for_a_token() -> None:
    """Errs on the safe side: prose that says "bearer" loses the next word."""
    assert redact("the bearer of bad news") == "the bearer [redacted] bad news"


def test_extra_secrets_are_replaced_wherever_they_stand() -> None:
    assert redact("token=local-123 and local-123", ("local-123", "")) == \
        "token=[redacted] and [redacted]"
    assert redact("nothing here", ("",)) == "nothing here"  # an empty secret matches nothing


def test_a_redacted_json_body_stays_json() -> None:
    body = json.dumps({"access_token": "at-secret-1", "id_token": JWT, "n": 1})
    assert json.loads(redact(body)) == {"access_token": "[redacted]", "id_token": "[redacted]",
                                        "n": 1}


def test_text_that_is_not_valid_utf8_does_not_raise() -> None:
    assert redact("lone \ud800 surrogate Bearer abcd") == "lone ? surrogate Bearer [redacted]"


@given(st.text(max_size=200))
def test_redacting_twice_changes_nothing_more(text: str) -> None:
    once = redact(text, ("s3cr3t",))
    assert redact(once, ("s3cr3t",)) == once
    assert "s3cr3t" not in once


PIECES = ("Bearer ", "bearer\t", "eyJhbGciOi.eyJzdWIiOi.sig", "access_token", "Refresh_Token",
          "ID_TOKEN", "api_key", "X-API-Key", "authorization", "code", "Code_verifier",
          "sk-proj_abcdefgh", "input_tokens", "=", ": ", '"', "abcd1234", " ", "é", "\ud800")
ASCII = st.text(st.characters(max_codepoint=127), max_size=6)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(PIECES) | ASCII, max_size=8),
       st.sampled_from(((), ("abcd",), ("", "1234"))))
def test_the_shortcut_answers_what_every_pattern_would(parts: list[str],
                                                       secrets: tuple[str, ...]) -> None:
    # A line returned as it is must be one that no pattern or secret touches.
    text = "".join(parts)
    assert redact(text, secrets) == scrub(text, secrets)
