"""schemathesis against the live stack, through the gateway: every operation of the merged
/api/openapi.json, with the Bearer token of a viewer, an uploader and an admin, a few
generated requests each (fixed seed: hypothesis derandomized). Every answer must be no 5xx,
a documented status code, of the documented media type and conform to its schema.

Destructive operations: ids in paths are generated, so they never name the fixture users'
own rows (DELETE /api/devices/{id}, /api/auth/tokens/{id}, PATCH /api/admin/users/{id} meet
404); logout and refresh get generated refresh tokens (401), never the fuzzing users' own.
Uploads that the schema allows do get stored (the uploader's and admin's random "videos"
fail processing as any undecodable file does)."""
from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.support.videos import register_user

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 5


@pytest.fixture(scope="module")
def api_document(live_stack):
    r = requests.get(f"{live_stack['url']}/api/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def role_headers(live_stack):
    """Bearer headers of a fresh viewer, uploader and the bootstrap admin."""
    gw = live_stack["url"]
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin",
                                                         "password": live_stack["env"]["ADMIN_PASSWORD"]}, timeout=10)
    assert admin.status_code == 200, admin.text
    admin_token = admin.json()["access_token"]
    viewer = register_user(gw, "fz_viewer")
    uploader = register_user(gw, "fz_uploader")
    r = requests.patch(f"{gw}/api/admin/users/{uploader['id']}", json={"role": "uploader"},
                       headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
    assert r.status_code == 200, r.text
    again = requests.post(f"{gw}/api/auth/login", json={"username": uploader["username"],
                                                         "password": uploader["password"]}, timeout=10)
    return {"viewer": viewer["access_token"], "uploader": again.json()["access_token"], "admin": admin_token}


def test_document_describes_every_public_service(live_stack, api_document):
    gw = live_stack["url"]
    assert requests.get(f"{gw}/openapi/openapi.json", timeout=10).status_code == 404   # per service: internal
    paths = api_document["paths"]
    for path in ("/api/auth/login", "/api/uploads/{upload_id}", "/api/videos/{video_id}/events",
                 "/api/stream/sessions/{sid}/keys", "/media/{path}", "/api/forensics/detect", "/api/webhooks"):
        assert path in paths, path
    assert not [p for p in paths if p.startswith("/objects")], "file-svc is internal"
    internal = requests.get(f"{live_stack['stack'].url('file')}/openapi/openapi.json", timeout=10).json()
    assert {"/objects/{key}", "/objects"} <= set(internal["paths"])   # documented apart, on its own port
    assert {"cookie", "csrf", "bearer", "dpop"} <= set(api_document["components"]["securitySchemes"])
    events = paths["/api/videos/{video_id}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events


@pytest.mark.parametrize("role", ["viewer", "uploader", "admin"])
def test_every_operation_answers_as_documented(live_stack, api_document, role_headers, role):
    gw = live_stack["url"]
    schema = schemathesis.openapi.from_dict(api_document)
    headers = {"Authorization": f"Bearer {role_headers[role]}"}
    failures: list[str] = []
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(base_url=gw, headers=headers, checks=CHECKS, timeout=30)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, reported together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations >= 60, operations
    assert not failures, f"{len(failures)} of {operations} operations failed as {role} " \
                         f"({time.monotonic() - started:.0f} s):\n\n" + "\n\n".join(failures)


def test_model_refusals_are_our_error_shape(live_stack):
    """A body the request model refuses is our 400 {"error","code","fields"}, never spectree's list."""
    gw = live_stack["url"]
    r = requests.post(f"{gw}/api/auth/login", json={"username": 5, "password": ["x"]}, timeout=10)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "invalid_input" and set(body["fields"]) == {"username", "password"}, body
    assert "username" in body["error"] and "password" in body["error"], body
    r = requests.post(f"{gw}/api/auth/login", json=["not", "an", "object"], timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "invalid_json", r.text
    r = requests.get(f"{gw}/api/library", params={"page": "x"}, timeout=10)
    assert r.status_code == 401 and set(r.json()) == {"error", "code"}, r.text
