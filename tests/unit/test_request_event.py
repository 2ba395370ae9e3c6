"""`request_event` refuses exactly the headers h11 refuses, and h11 writes the same bytes."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmock.net.h1wire import request_event

NAMES = st.one_of(st.sampled_from([b"authorization", b"x-id", b"Content-Type"]),
                  st.binary(max_size=12))
VALUES = st.one_of(st.binary(max_size=40),
                   st.text(alphabet=" \tab-=\x7f\x00\r\n", max_size=12).map(str.encode))


def _h11_bytes(make: object) -> bytes | type[Exception]:
    try:
        request = make()  # type: ignore[operator]
    except h11.LocalProtocolError:
        return h11.LocalProtocolError
    connection = h11.Connection(h11.CLIENT)
    return connection.send(request)  # type: ignore[no-any-return]


@given(st.lists(st.tuples(NAMES, VALUES), max_size=4))
def test_same_verdict_and_bytes_as_h11(extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"host", b"example.test:8080"), *extra, (b"content-length", b"2")]
    ours = _h11_bytes(lambda: request_event("POST", "/backend-api/codex/responses", headers))
    theirs = _h11_bytes(lambda: h11.Request(method="POST", target="/backend-api/codex/responses",
                                            headers=headers))
    assert ours == theirs


@pytest.mark.parametrize("value", [b"Bearer a\r\nx: y", b" lead", b"trail\t", b"nul\x00"])
def test_refuses_injection_and_blanks(value: bytes) -> None:
    with pytest.raises(h11.LocalProtocolError):
        request_event("POST", "/", [(b"host", b"h"), (b"authorization", value)])
