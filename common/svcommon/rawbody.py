"""A large request body read straight into the caller's buffer, with as few copies as we can.

Under gunicorn, ``wsgi.input`` passes every byte through several BytesIO buffers: measured on
this project's 2-core machine, reading 1 GiB that way cost 1.5 CPU s, ``recv_into`` a buffer
we own 0.25 s. An upload crosses two of our services, so that was a large share of its cost.

So when the body has a known length and the server is gunicorn with the reader we know (its
``Body`` over a ``LengthReader`` over a ``SocketUnreader``, nothing read yet), we take the few
bytes gunicorn read ahead with the headers and then ``recv_into`` the caller's buffer from the
client socket, keeping gunicorn's count of the bytes still to come in step: it drains whatever
a view leaves unread before the next request on the connection, and a failed read marks the
connection as not reusable. Anything else (a chunked body, another server, Flask's test client,
another gunicorn version) reads through the WSGI stream: the same bytes, more copies.

Used by file-svc and upload-svc, the two services that take large bodies.
"""
from __future__ import annotations

from werkzeug.exceptions import ClientDisconnected


def _gunicorn_parts(environ: dict, length: int | None):
    """(gunicorn Body, its LengthReader, the socket) when the fast path applies, else None."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    body = getattr(body, "_stream", body)      # under svcommon.bodylimit's counting wrapper
    if sock is None or length is None or length <= 0:
        return None
    try:
        from gunicorn.http.body import Body, LengthReader
    except ImportError:
        return None
    if type(body) is not Body or type(body.reader) is not LengthReader or body.buf.tell():
        return None
    reader = body.reader
    unreader = getattr(reader, "unreader", None)
    if reader.length != length or not hasattr(unreader, "take_buffered"):
        return None
    return body, reader, sock


def _counter(environ: dict):
    """svcommon.bodylimit's counting wrapper of wsgi.input, if any: it judges whether a view
    read its whole body (else it drains the rest or closes the connection), so bytes read
    around it are added to its count."""
    outer = environ.get("wsgi.input")
    return outer if hasattr(outer, "_stream") and isinstance(getattr(outer, "count", None), int) else None


class BodyReader:
    """``readinto(view)`` -> bytes read (0 at the end of the body); raises ClientDisconnected
    when the body ends before its Content-Length (the client went away)."""

    def __init__(self, environ: dict, stream, length: int | None):
        self._stream = stream                 # werkzeug's request.stream: the portable path
        self._fast = _gunicorn_parts(environ, length)
        self._ahead = memoryview(b"")
        if self._fast:
            body, reader, _ = self._fast
            ahead = reader.unreader.take_buffered()
            if len(ahead) > length:           # a pipelined next request: give it back
                reader.unreader.unread(ahead[length:])
                ahead = ahead[:length]
            self._ahead = memoryview(ahead)
            reader.length = length - len(ahead)   # what gunicorn would still read from the socket
            self.remaining = length
            self._count = _counter(environ)
            if self._count:                       # counted now: a drain reads only the socket's part
                self._count.count += len(ahead)

    @property
    def fast(self) -> bool:
        return self._fast is not None

    def readinto(self, view) -> int:
        if not self._fast:
            if hasattr(self._stream, "readinto"):
                return self._stream.readinto(view) or 0
            data = self._stream.read(len(view))     # a chunked body: werkzeug hands wsgi.input over as is
            view[:len(data)] = data
            return len(data)
        want = min(len(view), self.remaining)
        if want <= 0:
            return 0
        if self._ahead:
            got = min(want, len(self._ahead))
            view[:got] = self._ahead[:got]
            self._ahead = self._ahead[got:]
        else:
            body, reader, sock = self._fast
            try:
                got = sock.recv_into(view, want)
            except OSError:
                body.failed = True
                raise ClientDisconnected()
            if not got:
                body.failed = True
                raise ClientDisconnected()
            reader.length -= got
            if self._count:
                self._count.count += got
        self.remaining -= got
        return got

    def fill(self, buf: bytearray, start: int, stop: int) -> int:
        """Read into ``buf[start:stop]``; bytes read (0 at the end of the body)."""
        with memoryview(buf) as view:
            return self.readinto(view[start:stop])

    def readfull(self, view) -> int:
        """Fill ``view`` (fewer bytes only at the end of the body)."""
        done = 0
        while done < len(view):
            got = self.readinto(view[done:])
            if not got:
                break
            done += got
        return done
