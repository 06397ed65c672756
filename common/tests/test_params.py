"""svcommon.params: integers from requests are ASCII digits within bounds, times ISO 8601,
else a 400."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import pytest
from flask import Flask

from svcommon.errors import APIError
from svcommon.params import arg_int, arg_time, ascii_uint, header_uint, parse_uint


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u0661\u0662", "\uff11", " 1", "1 ", "+1", "-1", "1_0",
                                   "1e3", "0x10", "", None, "9" * 19])
def test_refused(value):
    with pytest.raises(APIError) as err:
        parse_uint(value, "n")
    assert err.value.status == 400 and err.value.code == "invalid_input"
    assert ascii_uint(value) is None


@pytest.mark.parametrize("value,expected", [("0", 0), ("007", 7), ("9" * 18, 10 ** 18 - 1)])
def test_accepted(value, expected):
    assert parse_uint(value, "n") == expected == ascii_uint(value)


def test_bounds_and_request_helpers():
    app = Flask(__name__)
    with pytest.raises(APIError):
        parse_uint("5", "n", minimum=6)
    with pytest.raises(APIError):
        parse_uint("5", "n", maximum=4)
    with app.test_request_context("/?page=&size=3", headers={"Upload-Offset": "\u00b2"}):
        assert arg_int("page", 1, maximum=10) == 1
        assert arg_int("size", 1, maximum=10) == 3
        with pytest.raises(APIError) as err:
            header_uint("Upload-Offset")
        assert err.value.code == "invalid_header"
    with app.test_request_context("/?page=99999999999999999999"):
        with pytest.raises(APIError):
            arg_int("page", 1, maximum=100_000)


@pytest.mark.parametrize("value,expected", [
    ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12)), ("2026-01-31T12:00:00", datetime(2026, 1, 31, 12)),
    ("2026-01-31T13:30:00.250+01:30", datetime(2026, 1, 31, 12, 0, 0, 250000)), ("2026-01-31", datetime(2026, 1, 31)),
    ("2026-01-31T12:00-05:00", datetime(2026, 1, 31, 17)), ("", None)])
def test_times(value, expected):
    with Flask(__name__).test_request_context(f"/?since={quote(value)}"):
        assert arg_time("since") == expected
        assert arg_time("until") is None


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-31T25:00:00Z", "1769860800",
                                   "2026-01-31T12:00:00Z\n", " 2026-01-31", "\u0662026-01-31", "2026-01-31T12:00:00+5"])
def test_bad_times(value):
    with Flask(__name__).test_request_context(f"/?since={quote(value)}"):
        with pytest.raises(APIError) as err:
            arg_time("since")
    assert err.value.status == 400 and err.value.code == "invalid_input"
