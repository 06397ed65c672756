"""svcommon.errors: every failure answers with a clear JSON error of the right status."""
from __future__ import annotations

import pytest
from flask import Flask
from mysql.connector import errors as myerrors

from svcommon import errors


@pytest.fixture
def client():
    app = Flask(__name__)
    errors.init_app(app)

    @app.post("/api/things/<int:errno>")
    def insert(errno: int):
        # What mysql-connector raises for a failed INSERT (no database needed to say so).
        raise myerrors.IntegrityError(msg="constraint failed", errno=errno)

    @app.get("/api/refused")
    def refused():
        raise errors.APIError(403, "forbidden", "not yours")

    return app.test_client()


@pytest.mark.parametrize("errno, status, code", [
    (1452, 500, "internal_error"),       # FK races are handled where they happen, not here
    (1062, 500, "internal_error"),       # a duplicate key is our bug, not the client's
])
def test_integrity_errors(client, errno, status, code):
    r = client.post(f"/api/things/{errno}")
    assert r.status_code == status and r.get_json()["code"] == code
    assert "constraint failed" not in r.get_data(as_text=True)     # no SQL detail leaks out


def test_api_error_is_json_with_its_status(client):
    r = client.get("/api/refused")
    assert r.status_code == 403 and r.get_json() == {"error": "not yours", "code": "forbidden"}
