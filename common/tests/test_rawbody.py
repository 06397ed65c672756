"""rawbody.BodyReader on gunicorn's own reader over a real socket: the body lands in our
buffer exactly, gunicorn's read-ahead comes first, a pipelined next request is left to
gunicorn, bodylimit's count keeps up, and a body cut short raises ClientDisconnected."""
from __future__ import annotations

import socket
import threading

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader
from werkzeug.exceptions import ClientDisconnected

from svcommon.rawbody import BodyReader



class Counting:
    """Stands for svcommon.bodylimit's counting wrapper (its ``_stream`` and ``count``)."""

    def __init__(self, stream):
        self._stream, self.count = stream, 0


def _gunicorn_body(sent: bytes, length: int, ahead: int, close: bool = False):
    a, b = socket.socketpair()

    def send():                             # more than a socket buffer: from another thread
        a.sendall(sent)
        if close:
            a.close()
    threading.Thread(target=send, daemon=True).start()
    unreader = SocketUnreader(b)
    unreader.unread(b.recv(ahead))          # what gunicorn read along with the headers
    body = Body(LengthReader(unreader, length))
    return a, b, body, unreader


def test_reads_exactly_the_body_and_leaves_the_next_request():
    data = bytes(range(256)) * 4000
    nxt = b"GET /next HTTP/1.1\r\n\r\n"
    a, b, body, unreader = _gunicorn_body(data + nxt, len(data), 5000)
    counted = Counting(body)
    reader = BodyReader({"gunicorn.socket": b, "wsgi.input": counted}, None, len(data))
    assert reader.fast
    buf = bytearray(len(data) + 100)
    assert reader.readfull(memoryview(buf)) == len(data)
    assert bytes(buf[:len(data)]) == data and counted.count == len(data)
    assert body.reader.length == 0 and body.read(10) == b""     # gunicorn: nothing left of the body
    assert unreader.read(len(nxt)) == nxt                        # the next request is intact
    a.close(), b.close()


def test_pipelined_bytes_read_ahead_are_given_back():
    data, nxt = b"x" * 100, b"NEXT"
    a, b, body, unreader = _gunicorn_body(data + nxt, len(data), 104)
    reader = BodyReader({"gunicorn.socket": b, "wsgi.input": body}, None, len(data))
    buf = bytearray(200)
    assert reader.readfull(memoryview(buf)) == 100 and bytes(buf[:100]) == data
    assert unreader.read(4) == nxt
    a.close(), b.close()


def test_a_body_cut_short_is_a_disconnect_and_the_connection_is_not_reused():
    _, b, body, _ = _gunicorn_body(b"y" * 1000, 5000, 10, close=True)
    reader = BodyReader({"gunicorn.socket": b, "wsgi.input": body}, None, 5000)
    with pytest.raises(ClientDisconnected):
        reader.readfull(memoryview(bytearray(5000)))
    assert body.failed
    b.close()


def test_anything_else_reads_through_the_wsgi_stream():
    import io
    stream = io.BytesIO(b"z" * 10)
    reader = BodyReader({"wsgi.input": stream}, stream, 10)
    assert not reader.fast
    buf = bytearray(10)
    assert reader.fill(buf, 0, 10) == 10 and bytes(buf) == b"z" * 10
