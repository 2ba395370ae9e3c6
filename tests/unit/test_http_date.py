"""The Date header chatmock writes by hand reads as the standard library's would."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from chatmock.server import h1responder


@pytest.mark.parametrize("moment", [0, 951_782_400, 1_709_251_199, 1_700_000_000,
                                    2_000_000_000, 4_102_444_799])
def test_http_date_is_the_imf_fixdate(moment: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h1responder, "_date_cache", (-1, b""))
    monkeypatch.setattr(time, "time", lambda: moment + 0.75)
    assert h1responder.http_date().decode() == formatdate(moment, usegmt=True)
