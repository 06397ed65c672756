"""OpenAPI 3.1 from the code (spectree + pydantic): the pieces every service shares.

Each service creates its spec unbound in ``extensions.py`` (``api = service_spec("auth-svc")``),
decorates its public views with ``@api.validate(...)`` and attaches it in ``create_app`` with
``init_openapi(app, api)``; the spec is then served at ``/openapi/openapi.json`` on the service's
own port (the gateway answers 404 there). streaming-svc merges every public service's document
into ``/api/openapi.json`` (streaming_svc/apidocs.py).

Why spectree: it decorates the existing Flask views, so blueprints, error handlers and the
flaskr layout stay as they are (flask-openapi3 / APIFlask replace the Flask and Blueprint
classes), and it validates requests with pydantic v2 models that also make the schema.
"""
from __future__ import annotations

from typing import Any, Literal, TypeVar

from flask import Flask, current_app, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from spectree.plugins.flask_plugin import FlaskPlugin

from .auth import ACCESS_COOKIE, CSRF_HEADER, current_principal
from .errors import APIError

SPEC_PATH = "/openapi/openapi.json"

# The vocabularies that more than one service's models use: one spelling each.
Visibility = Literal["public", "private", "password"]
VideoStatus = Literal["uploading", "queued", "processing", "ready", "failed", "deleting"]


class ErrorBody(BaseModel):
    """Every refusal (svcommon/errors.py)."""
    error: str
    code: str
    fields: dict[str, list[str]] | None = None


class Loose(BaseModel):
    """A JSON object whose fields docs/api.md describes; the reference only promises an object
    (file-svc's internal document only; a public answer is typed to its last field but for the
    stored figures of a forensic trace, ARCHITECTURE.md "API reference")."""
    model_config = ConfigDict(extra="allow")


class Strict(BaseModel):
    """A request body checked as strictly as JSON types go: ``"1"`` is no integer, ``1`` no
    boolean, ``1`` no string; members the model does not name are ignored."""
    model_config = ConfigDict(strict=True)


def refuse(code: str, *messages: str) -> PydanticCustomError:
    """What a model's validator raises to refuse a field with our ``code`` and messages (each
    a sentence naming the field, listed whole in the 400's ``fields``): every field's problems
    are reported at once, and ``code`` (``invalid_input`` unless a validator says otherwise)
    is the 400's."""
    return PydanticCustomError(code, "{sv_text}", {"sv_text": " ".join(messages), "sv_code": code,
                                                   "sv_messages": list(messages)})


def refusal(error: ValidationError) -> APIError:
    """The 400 ``{"error","code","fields"}`` of a model's validation failure: ``fields`` maps
    each field (``qoe.ranges`` when nested; ``body`` for the whole) to its messages."""
    code, fields, sentences = "invalid_input", {}, []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem.get("loc", ())) or "body"
        ctx = problem.get("ctx") or {}
        if "sv_code" in ctx:
            code = ctx["sv_code"] if code == "invalid_input" else code
            messages = list(ctx["sv_messages"])
            sentences.extend(messages)
        else:
            messages = [problem.get("msg", "invalid")]
            sentences.append(f"{name}: {messages[0]}")
        fields.setdefault(name, []).extend(messages)
    separator = " " if all(s.endswith(".") for s in sentences) else "; "
    return APIError(400, code, separator.join(sentences) or "invalid input", fields=fields)


Model = TypeVar("Model", bound=BaseModel)


def validate_as(model: type[Model], data: Any, *, not_an_object: str = "invalid_json") -> Model:
    """``data`` (a JSON body, a form's fields, tus metadata) checked by ``model`` where the view
    must check it itself: after a throttle or a deferred proof, or for an HTML form. The same
    model documents the route (``@api.validate(json=model, skip_validation=True)``)."""
    if not isinstance(data, dict):
        raise APIError(400, not_an_object, "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc) from None


class Empty(BaseModel):
    """No body (204) or a body that says nothing more than the status."""


class Paged(BaseModel):
    """The paging fields of every list answer; a subclass adds its ``items``."""
    page: int
    pages: int
    total: int


class PageQuery(BaseModel):
    """The paging parameters of the lists that take both (the view reads and bounds them)."""
    page: str | None = Field(None, description="1-based page number, ASCII digits")
    per_page: str | None = Field(None, description="items per page, ASCII digits (the list caps it)")


SECURITY_SCHEMES = [
    SecurityScheme(name="cookie", data=SecuritySchemeData(
        type="apiKey", field_in="cookie", name=ACCESS_COOKIE,
        description="the web session (login sets it); unsafe methods also need the "
                    f"`{CSRF_HEADER}` header (csrf scheme)")),
    SecurityScheme(name="csrf", data=SecuritySchemeData(
        type="apiKey", field_in="header", name=CSRF_HEADER,
        description="double submit: the value of the sv_csrf cookie")),
    SecurityScheme(name="bearer", data=SecuritySchemeData(
        type="http", scheme="bearer", bearer_format="JWT or svt_ API token",
        description="an access token from POST /api/auth/login, or an API token (svt_…) "
                    "where its scopes reach")),
    SecurityScheme(name="dpop", data=SecuritySchemeData(
        type="http", scheme="DPoP",
        description="a device-bound access token (POST /api/auth/device-token) with a `DPoP` "
                    "proof header per request (RFC 9449)")),
]

#: who may call: any signed-in user by cookie (+ CSRF for unsafe methods) or Bearer token
SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": [], "csrf": []}]
#: playback: a DPoP-bound device token only
DEVICE_BOUND: list[dict[str, list[str]]] = [{"dpop": []}]
#: no credential at all
PUBLIC: list[dict[str, list[str]]] = [{}]


class Documented(Response):
    """Responses for the reference (never checked per answer: _FlaskRoutes).
    ``media``: ``{status: media type}`` of answers that are not JSON (SSE, video, images, text);
    ``event_data``: the model of a server-sent event's JSON ``data`` (the schema of a
    text/event-stream answer describes one event, as OpenAPI 3.2's ``itemSchema`` does)."""

    def __init__(self, *codes, media: dict[int, str] | None = None, event_data: type[BaseModel] | None = None,
                 **models):
        super().__init__(*codes, **models)
        self.media = media or {}
        self.event_data = event_data

    def _schema(self, media_type: str) -> dict[str, Any]:
        if media_type == "text/event-stream":
            data: dict[str, Any] = {"type": "string"}
            if self.event_data is not None:
                data.update(contentMediaType="application/json", contentSchema=self.event_data.model_json_schema())
            return {"type": "object", "description": "one event of the stream",
                    "properties": {"event": {"type": "string"}, "data": data, "id": {"type": "string"},
                                   "retry": {"type": "integer"}}}
        return {"type": "string"} if media_type.startswith("text/") else {"type": "string", "format": "binary"}

    def generate_spec(self, naming_strategy=None) -> dict[str, Any]:
        spec = super().generate_spec(naming_strategy) if naming_strategy else super().generate_spec()
        for status, media_type in self.media.items():
            spec.setdefault(str(status), {"description": "OK"})["content"] = {
                media_type: {"schema": self._schema(media_type)}}
        return spec


#: statuses outside HTTP's registry that we answer (with their meaning)
NONSTANDARD = {460: "Checksum Mismatch (tus checksum extension)"}


def responses(ok: dict[str, Any] | None = None, *refusals: int, media: dict[int, str] | None = None,
              event_data: type[BaseModel] | None = None) -> Documented:
    """``ok``: ``{"HTTP_200": Model or None, ...}``; ``refusals``: statuses answered with ErrorBody;
    ``media``: the media type of non-JSON answers, by status; ``event_data``: the model of an
    event stream's JSON data."""
    given = dict(ok or {})
    for status in media or {}:
        given.setdefault(f"HTTP_{status}", None)
    for status in refusals:
        if status not in NONSTANDARD:
            given.setdefault(f"HTTP_{status}", ErrorBody)
    documented = Documented(media=media, event_data=event_data, **given)
    for status in set(refusals) & set(NONSTANDARD):   # (spectree's constructor takes only registered ones)
        documented.add_model(status, ErrorBody, description=NONSTANDARD[status])
    return documented


def _validation_refused(req, resp, req_validation_error, instance, model_adapter) -> None:
    """spectree's request-validation hook: our ``{"error","code","fields"}`` 400, never its own."""
    if req_validation_error is None:
        return
    # Who is calling first, as the views do: bad credentials stay a 401 before any 400, and a
    # DPoP proof sent with a refused body is used up all the same (single-use whatever the outcome).
    current_principal()
    if req.method not in ("GET", "HEAD", "DELETE") and req.is_json \
            and not isinstance(req.get_json(silent=True), dict):
        raise APIError(400, "invalid_json", "request body must be a JSON object")
    raise refusal(req_validation_error)


class _FlaskRoutes(FlaskPlugin):
    """spectree's Flask plugin, but a route that answers HEAD alone (tus's offset query) is
    documented too; HEAD beside GET (Flask adds it to every GET) and OPTIONS are not. And the
    view's answer goes out as it is: spectree would read every body to check it (a streamed
    download, SSE or media answer must never be read whole), and a drifted field must not
    turn a served answer into a 500; tests/test_api_fuzz.py checks answers against the
    documented schemas instead."""

    def validate_response(self, resp, resp_model, skip_validation, force_resp_serialize):
        return current_app.make_response(resp), None

    def bypass(self, func, method):
        return method == "OPTIONS"

    def parse_func(self, route):
        for method, func in super().parse_func(route):
            if method != "HEAD" or "GET" not in route.methods:
                yield method, func


class _ServiceSpec(SpecTree):
    """A view without a docstring is summarised by its name ("list tokens"), not spectree's
    "list_tokens <GET>"."""

    def _generate_spec(self) -> dict[str, Any]:
        spec = super()._generate_spec()
        for operations in spec["paths"].values():
            for operation in operations.values():
                summary = operation.get("summary", "")
                if summary.endswith(">") and " <" in summary:
                    operation["summary"] = summary.rsplit(" <", 1)[0].replace("_", " ")
        return spec


def validated_json():
    """The body as ``@api.validate(json=Model)`` validated it (a Model instance). A body that is
    no JSON object (a form's, text, a list) is 400 ``invalid_json``."""
    body = getattr(getattr(request, "context", None), "json", None)
    if body is None or not isinstance(request.get_json(silent=True), dict):
        raise APIError(400, "invalid_json", "request body must be a JSON object")
    return body


def service_spec(title: str, description: str = "") -> SpecTree:
    """The unbound spec of one service (created in its extensions.py). Schema names carry the
    service's name (``auth.TokenPair``) so that the merged document has no collisions; the
    shared ones (``ErrorBody``) are the same in every service."""
    prefix = title.removesuffix("-svc")

    def name_of(model) -> str:
        return model.__name__ if model.__module__ == __name__ else f"{prefix}.{model.__name__}"

    return _ServiceSpec(
        "flask", backend=_FlaskRoutes, naming_strategy=name_of, nested_naming_strategy=lambda _parent, child: f"{prefix}.{child}",
        title=f"StreamVault {title}", description=description, version="1",
        mode="strict", path="openapi", filename="openapi.json", page_templates={},
        annotations=False, security_schemes=SECURITY_SCHEMES,
        before=_validation_refused, validation_error_status=400, validation_error_model=ErrorBody)


def init_openapi(app: Flask, spec: SpecTree) -> None:
    """Bind ``spec`` to ``app``: serves SPEC_PATH."""
    spec.register(app)


def document(spec: SpecTree) -> dict[str, Any]:
    """The service's OpenAPI document (built on first use)."""
    return spec.spec


def merge_documents(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One document of several services' (their paths are the gateway's: it does not rewrite
    them). A path and method described twice, or two different schemas under one name, is a
    bug in the services and fails loudly rather than hiding one of them."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "StreamVault API", "version": "1",
                 "description": "Every public route of StreamVault, as seen through the gateway, "
                                "generated from the services' code. Errors are `{\"error\", \"code\"}` "
                                "(ErrorBody). Formats beyond what a schema can say (media encryption, "
                                "tus, server-sent events, webhook signatures): docs/api.md."},
        "tags": [], "paths": {}, "components": {"schemas": {}, "securitySchemes": {}},
    }
    seen_tags: set[str] = set()
    for doc in documents:
        for path, operations in doc.get("paths", {}).items():
            target = merged["paths"].setdefault(path, {})
            for method, operation in operations.items():
                if method in target:
                    raise ValueError(f"{method.upper()} {path} is described by two services")
                target[method] = operation
        for kind in ("schemas", "securitySchemes"):
            for name, schema in doc.get("components", {}).get(kind, {}).items():
                if merged["components"][kind].setdefault(name, schema) != schema:
                    raise ValueError(f"two different {kind} named {name}")
        for tag in doc.get("tags", []):
            if tag["name"] not in seen_tags:
                seen_tags.add(tag["name"])
                merged["tags"].append(tag)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged
