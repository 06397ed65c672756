"""Request body limits, enforced before a view reads a byte, and what becomes of a body a
view did not read.

Every route gets ``BODY_MAX_BYTES`` (a login form or a JSON call is a few KB); the few
routes that take large bodies raise it with ``@body_limit(...)``, and must authenticate
and authorise before they touch the body. The limit is checked on ``Content-Length``
before the view runs and, for chunked bodies, on the stream itself (the byte past the
limit raises), so nothing over it is parsed, buffered or spooled. Both answer 413
``body_too_large`` naming the limit.

A view that answers without reading the body (a refusal) leaves the rest of it on the
connection. Behind the gateway that connection is kept alive and reused; gunicorn drains
only 64 KiB and then closes silently after promising keep-alive, and nginx sends the next
request into the closed socket (502 on a non-idempotent request). So before the answer
goes out the rest of the body is drained here (bounded in bytes and time); a body too big
to drain, over the route's limit or too slow closes the connection *announced*
(``Connection: close``) instead.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Callable, Union

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import error_response
from .params import ascii_uint

log = logging.getLogger("svcommon.bodylimit")

FORM_OVERHEAD = 64 * 1024   # multipart envelope and small fields around an uploaded file
DRAIN_IDLE_SECONDS = 1.0    # longest pause in a body being drained
LINGER_SECONDS = 2.0        # after an announced close: absorb what the peer still sends

Limit = Union[int, str, Callable[[dict], int]]


def body_limit(limit: Limit):
    """Raise (or lower) the body limit of one view: bytes, the name of an int setting, or
    ``f(config) -> bytes``. The view must check who is calling before reading the body."""
    def deco(view):
        view.sv_body_limit = limit
        return view
    return deco


def route_limit() -> int:
    view = current_app.view_functions.get(request.endpoint or "")
    spec = getattr(view, "sv_body_limit", None)
    cfg = current_app.config
    if spec is None:
        return int(cfg["BODY_MAX_BYTES"])
    if isinstance(spec, str):
        return int(cfg[spec])
    if callable(spec):
        return int(spec(cfg))
    return int(spec)


def _too_large(limit: int):
    log.warning("request refused", extra={"status": 413, "code": "body_too_large", "limit": limit})
    return error_response(413, "body_too_large", f"request body exceeds this route's limit of {limit} bytes")


def init_app(app: Flask) -> None:
    # Registered before every other before_request (auth, blueprints): it only looks at
    # headers, so it runs before anything can read the body.
    @app.before_request
    def _enforce():
        limit = request.environ["svcommon.body_limit"] = route_limit()
        stream = request.environ.get("wsgi.input")
        if isinstance(stream, _CountingInput):
            stream.limit = limit   # chunked bodies: the byte past the limit raises 413
        # (Flask's MAX_FORM_MEMORY_SIZE, 500 KB per text field, stays: the multipart parser
        # reads 64 KiB at a time and needs room above that.)
        if request.content_length is not None and request.content_length > limit:
            return _too_large(limit)
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _stream_too_large(err):
        return _too_large(request.environ.get("svcommon.body_limit") or int(current_app.config["BODY_MAX_BYTES"]))

    app.wsgi_app = UnreadBodyGuard(app.wsgi_app, int(app.config["BODY_DRAIN_MAX_BYTES"]),
                                   float(app.config["BODY_DRAIN_SECONDS"]))


class _CountingInput:
    """wsgi.input that remembers how much was read and whether its end was seen, and
    refuses to deliver more than ``limit`` bytes. (werkzeug's own guard for chunked bodies
    silently truncates a one-shot read at the limit instead of refusing it.)"""

    def __init__(self, stream):
        self._stream = stream
        self.count = 0
        self.eof = False
        self.limit: int | None = None

    def _seen(self, data):
        if data:
            self.count += len(data)
            if self.limit is not None and self.count > self.limit:
                raise RequestEntityTooLarge()
        else:
            self.eof = True
        return data

    def read(self, *a):
        return self._seen(self._stream.read(*a))

    def readline(self, *a):
        return self._seen(self._stream.readline(*a))

    def readlines(self, *a):
        lines = self._stream.readlines(*a)
        for line in lines:
            self._seen(line)
        self.eof = True
        return lines

    def __iter__(self):
        return iter(self.readline, b"")


class UnreadBodyGuard:
    """WSGI middleware: before answering, drain an unread body (bounded) or announce that the
    connection closes (see the module docstring)."""

    def __init__(self, app, drain_max: int, drain_seconds: float):
        self.app, self.drain_max, self.drain_seconds = app, drain_max, drain_seconds

    def __call__(self, environ, start_response):
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = ascii_uint(length)         # "²".isdigit() holds, yet int("²") raises
        if not chunked and not length:
            return self.app(environ, start_response)
        counted = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])
        state = {"close": False}

        def guarded_start_response(status, headers, exc_info=None):
            if not _consumed(counted, length, chunked) and not self._drain(counted, length, environ):
                # Too big, over the route's limit, or not arriving: say so, so the gateway
                # never reuses this connection, and close it once the answer is out.
                state["close"] = True
                headers = [(k, v) for k, v in headers if k.lower() != "connection"]
                headers.append(("Connection", "close"))
                # gunicorn drops a hop-by-hop header from the app; tell it directly.
                server_response = getattr(start_response, "__self__", None)
                if hasattr(server_response, "force_close"):
                    server_response.force_close()
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        def after():
            if state["close"]:
                _linger(environ)

        return _Closing(self.app(environ, guarded_start_response), after)

    def _drain(self, counted: _CountingInput, length: int | None, environ) -> bool:
        """Before answering: read and drop the rest of the body (at most ``drain_max``
        bytes, ``drain_seconds``, never past the route's limit). The gateway streams upload
        bodies through; if the answer comes first, nginx stops reading the client's body,
        closes its connection to us *and* silently drops the client's keep-alive
        connection, so the client's next request fails. A drained body leaves both usable."""
        limit = environ.get("svcommon.body_limit")
        if length is not None and (length - counted.count > self.drain_max or (limit and length > limit)):
            return False
        counted.limit = None   # dropping bytes, not delivering them
        sock = environ.get("gunicorn.socket")
        prior = sock.gettimeout() if sock is not None else None
        deadline = time.monotonic() + self.drain_seconds
        start = counted.count
        try:
            while not _consumed(counted, length, length is None):
                left = deadline - time.monotonic()
                if left <= 0 or counted.count - start > self.drain_max or (limit and counted.count > limit):
                    return False
                if sock is not None:
                    # A client that stops sending is not waited for: an anonymous caller
                    # could otherwise hold this thread for the whole drain time.
                    sock.settimeout(min(left, DRAIN_IDLE_SECONDS))
                want = 65536 if length is None else min(65536, length - counted.count)
                if not counted.read(want) and length is not None:
                    return False   # the client went away
            return True
        except (OSError, ValueError):
            return False
        finally:
            if sock is not None:
                try:
                    sock.settimeout(prior)
                except OSError:
                    pass


def _consumed(counted: _CountingInput, length: int | None, chunked: bool) -> bool:
    return counted.eof if chunked or length is None else counted.count >= length


def _linger(environ) -> None:
    """Half-close, then absorb incoming body bytes until the peer closes (bounded): closing
    a socket with unread data sends a reset, which can destroy the response we just sent
    before the gateway has read it (the same reason nginx has ``lingering_close``)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return
    deadline = time.monotonic() + LINGER_SECONDS
    try:
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                break
    except OSError:
        pass


class _Closing:
    """The app's response iterable, plus an action once the server has sent it all (WSGI
    calls ``close()`` after the last byte is written, before the socket is closed)."""

    def __init__(self, result, after: Callable[[], object]):
        self._result, self._after = result, after

    def __iter__(self):
        return iter(self._result)

    def close(self):
        try:
            if hasattr(self._result, "close"):
                self._result.close()
        finally:
            self._after()


