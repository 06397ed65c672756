"""schemathesis against the live stack, through the gateway: every operation of the merged
/api/openapi.json, with the Bearer token of a viewer, an uploader and an admin, a few
generated requests each (fixed seed: hypothesis derandomized). Every answer must be no 5xx,
a documented status code, of the documented media type and conform to its schema.

Two passes per role. The first generates every part of the request, ids in paths included,
so those never name the fixture users' own rows (DELETE /api/devices/{id},
/api/auth/tokens/{id}, PATCH /api/admin/users/{id} meet 404); logout and refresh get
generated refresh tokens (401), never the fuzzing users' own. The second gives the operations
whose path names resources real ids the role may reach (the uploader's public ready video —
its own, any video to the admin, one to watch to the viewer —, the role's playback session and
media token, a caption, a tus upload, a webhook endpoint, an API token, a device; the admin: a
job of the queue and a throwaway user), so their found paths are fuzzed too (generated
bodies and queries); its DELETEs come last, the video's very last and by the admin only (the
last role), so the other operations meet live resources. Uploads that the schema
allows do get stored (the uploader's and admin's random "videos" fail processing as any
undecodable file does)."""
from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.support.contract_client import ContractClient
from tests.support.media import ONE_RUNG
from tests.support.videos import make_ready_video, register_user

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 5
EXAMPLES_WITH_REAL_IDS = 3
CLIP_SECONDS = 4
CLIP_SIZE = ONE_RUNG
CAPTION = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nfuzz\n"


@pytest.fixture(scope="module")
def api_document(live_stack):
    r = requests.get(f"{live_stack['url']}/api/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def role_users(live_stack):
    """A fresh viewer, a fresh uploader and the bootstrap admin: id, username, password, access_token."""
    gw = live_stack["url"]
    password = live_stack["env"]["ADMIN_PASSWORD"]
    admin = requests.post(f"{gw}/api/auth/login", json={"username": "admin", "password": password}, timeout=10)
    assert admin.status_code == 200, admin.text
    admin = {**admin.json()["user"], "password": password, "access_token": admin.json()["access_token"]}
    viewer = register_user(gw, "fz_viewer")
    uploader = register_user(gw, "fz_uploader")
    r = requests.patch(f"{gw}/api/admin/users/{uploader['id']}", json={"role": "uploader"},
                       headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text
    again = requests.post(f"{gw}/api/auth/login", json={"username": uploader["username"],
                                                         "password": uploader["password"]}, timeout=10)
    return {"viewer": viewer, "uploader": {**uploader, "access_token": again.json()["access_token"]}, "admin": admin}


@pytest.fixture(scope="module")
def role_headers(role_users):
    return {role: bearer(user) for role, user in role_users.items()}


def bearer(user: dict) -> dict:
    return {"Authorization": f"Bearer {user['access_token']}"}


@pytest.fixture(scope="module")
def real_ids(live_stack, role_users, worker_app, mdb, stores, clip):
    """Per role, path parameter → the id of a resource that exists and that the role may reach.
    One ready video, the uploader's and public: the admin manages it as any video, the viewer
    watches it (the roles run in that order: viewer, uploader, admin, whose DELETE is last)."""
    gw = live_stack["url"]
    ids = {}
    video_id = make_ready_video(worker_app, mdb, stores, role_users["uploader"]["id"], clip, title="fuzz")
    for role in ("uploader", "admin", "viewer"):
        user = role_users[role]
        mine = role != "viewer"
        ids[role] = own = {"video_id": video_id, "user_id": user["id"]}
        token = requests.post(f"{gw}/api/auth/tokens", json={"name": "fuzz", "scopes": ["read"]},
                              headers=bearer(user), timeout=10)
        assert token.status_code == 201, token.text
        own["token_id"] = token.json()["api_token"]["id"]
        hook = requests.post(f"{gw}/api/webhooks", json={"url": "http://127.0.0.1:9/fuzz", "events": ["video.ready"]},
                             headers=bearer(user), timeout=10)
        assert hook.status_code == 201, hook.text
        own["endpoint_id"] = hook.json()["id"]
        player = ContractClient(gw).login(user["username"], user["password"])
        session = player.open_session(video_id)
        own["device_id"], own["sid"] = player.device_id, session.id
        own["token"] = urlparse(session.manifest_url).path.split("/")[5]     # /api/stream/m/{sid}/{token}/…
        if mine:
            upload = requests.post(f"{gw}/api/uploads", headers={**bearer(user), "Tus-Resumable": "1.0.0",
                                                                  "Upload-Length": "1000"}, timeout=10)
            assert upload.status_code == 201, upload.text
            own["upload_id"] = upload.headers["Location"].rstrip("/").rsplit("/", 1)[1]
            caption = requests.post(f"{gw}/api/videos/{video_id}/captions", data={"lang": {"uploader": "en", "admin": "fr"}[role]},
                                    files={"file": ("fuzz.vtt", CAPTION)}, headers=bearer(user), timeout=10)
            assert caption.status_code == 201, caption.text
            own["caption_id"] = caption.json()["caption"]["id"]
    admin = ids["admin"]
    admin["user_id"] = register_user(gw, "fz_other")["id"]     # never the admin's own account
    jobs = requests.get(f"{gw}/api/admin/jobs", headers=bearer(role_users["admin"]), timeout=10)
    assert jobs.status_code == 200 and jobs.json()["items"], jobs.text
    admin["job_id"] = jobs.json()["items"][0]["id"]
    return ids


def destructive_last(operation) -> tuple:
    """Reads and changes first, then DELETEs, the video's own DELETE the very last."""
    return (operation.method.upper() == "DELETE", operation.path == "/api/videos/{video_id}")


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


def fuzz_operation(operation, gw: str, headers: dict, examples: int, ids: dict | None = None) -> list[int]:
    """``examples`` generated requests of ``operation`` (its path's ids replaced by ``ids``),
    each checked; the statuses answered. Raises what the checks found."""
    statuses: list[int] = []

    fixed = {p.name: ids[p.name] for p in operation.path_parameters} if ids else None

    @given(case=operation.as_strategy(path_parameters=fixed))
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case):
        statuses.append(case.call_and_validate(base_url=gw, headers=headers, checks=CHECKS, timeout=30).status_code)

    fuzz()
    return statuses


@pytest.mark.parametrize("role", ["viewer", "uploader", "admin"])
def test_every_operation_answers_as_documented(live_stack, api_document, role_headers, real_ids, role):
    gw = live_stack["url"]
    schema = schemathesis.openapi.from_dict(api_document)
    headers = role_headers[role]
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    with_ids = sorted((op for op in operations if op.path_parameters and all(
        p.name in real_ids[role] for p in op.path_parameters)
        and (role == "admin" or destructive_last(op) != (True, True))), key=destructive_last)
    found: dict[str, list[int]] = {}
    started = time.monotonic()
    for operation, examples, ids in [*((op, EXAMPLES_PER_OPERATION, None) for op in operations),
                                     *((op, EXAMPLES_WITH_REAL_IDS, real_ids[role]) for op in with_ids)]:
        try:
            statuses = fuzz_operation(operation, gw, headers, examples, ids)
            if ids:
                found[operation.label] = statuses
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, reported together
            failures.append(f"{operation.label}{' (real ids)' if ids else ''}: {str(exc)[:1500]}")
    assert len(operations) >= 60 and len(with_ids) >= 15, (len(operations), len(with_ids))
    assert not failures, f"{len(failures)} of {len(operations) + len(with_ids)} runs failed as {role} " \
                         f"({time.monotonic() - started:.0f} s):\n\n" + "\n\n".join(failures)
    # The real ids reached their resources: these answer 200 to the role with them.
    reached = {"GET /api/webhooks/{endpoint_id}", "GET /api/library/{video_id}"} | (
        {"GET /api/videos/{video_id}", "GET /api/videos/{video_id}/captions"}
        if role != "viewer" else set()) | ({"GET /api/forensics/sessions/{sid}"} if role == "admin" else set())
    missed = {label for label in reached if 200 not in found.get(label, [])}
    assert not missed, f"real ids did not reach {sorted(missed)} as {role}: {found}"


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
