"""Streaming multipart/form-data for POST /api/videos: werkzeug's sans-IO decoder fed from
the request body, so the file part flows to S3 as it arrives and is never held
whole in memory or on disk. Text fields are small and capped.

The file part itself mostly bypasses the decoder (``FileReader``): the decoder copies each
byte three times and cost 2.5-3.5 CPU s per GiB, more than the rest of upload-svc."""
from __future__ import annotations

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from svcommon.errors import APIError

READ_CHUNK = 256 * 1024
MAX_FIELDS_BYTES = 64 * 1024
# Caps the decoder's own buffer (headers or preamble without a boundary in sight); events
# are consumed after every read, so a well-formed body never comes close.
MAX_BUFFER = 1024 * 1024


class FormStream:
    """``body``: the request body (rawbody.BodyReader: ``fill(buf, start, stop)``)."""

    def __init__(self, body, boundary: str):
        if not boundary:
            raise APIError(400, "invalid_form", "multipart/form-data needs a boundary")
        self.body = body
        self.boundary = boundary.encode("latin-1")
        self._chunk = bytearray(READ_CHUNK)
        self.decoder = MultipartDecoder(self.boundary, max_form_memory_size=MAX_BUFFER)
        self.fields: dict[str, str] = {}
        self._field_bytes = 0
        self._events = self._iter_events()

    def _iter_events(self):
        while True:
            event = self.decoder.next_event()
            if isinstance(event, NeedData):
                got = self.body.fill(self._chunk, 0, READ_CHUNK)
                self.decoder.receive_data(bytes(self._chunk[:got]) if got else None)
                if not got and self.decoder.state.name == "COMPLETE":
                    return
                continue
            yield event
            if isinstance(event, Epilogue):
                return

    def _read_field(self, name: str) -> None:
        value = bytearray()
        for event in self._events:
            if not isinstance(event, Data):
                raise APIError(400, "invalid_form", "malformed multipart body")
            value += event.data
            self._field_bytes += len(event.data)
            if self._field_bytes > MAX_FIELDS_BYTES:
                raise APIError(413, "fields_too_large", "form fields are too large")
            if not event.more_data:
                break
        try:
            self.fields[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise APIError(400, "invalid_input", f"field '{name}' is not UTF-8")

    @staticmethod
    def _check_not_a_broken_file(event: Field, file_field: str) -> None:
        """A CR or LF inside the quoted filename ends the part's header line early, so the
        decoder sees a text field (no filename) and its bytes would be read as one: say
        what is wrong instead of "form fields are too large"."""
        disposition = event.headers.get("Content-Disposition", "")
        if event.name == file_field or "filename" in disposition:
            raise APIError(400, "invalid_filename", "the file name contains a line break (CR or LF); "
                           "rename the file and upload again")

    def until_file(self, file_field: str = "file") -> tuple[str, str]:
        """Read text fields up to the file part; returns (filename, content type)."""
        try:
            for event in self._events:
                if isinstance(event, Field):
                    self._check_not_a_broken_file(event, file_field)
                    self._read_field(event.name)
                elif isinstance(event, File):
                    if event.name != file_field:
                        raise APIError(400, "invalid_form", f"unexpected file field '{event.name}' (use '{file_field}')")
                    return event.filename or "", event.headers.get("Content-Type", "application/octet-stream")
        except ValueError as exc:  # the decoder's complaint about a malformed body
            raise APIError(400, "invalid_form", f"malformed multipart body: {exc}")
        raise APIError(400, "missing_file", f"no '{file_field}' file part in the form")

    def file_reader(self) -> "FileReader":
        """The file part's bytes (call after ``until_file``)."""
        return FileReader(self)

    def rest(self) -> None:
        """Fields after the file (accepted, applied by the caller)."""
        for event in self._events:
            if isinstance(event, Field):
                self._read_field(event.name)


class FileReader:
    """The file part's bytes, read with ``fill(buf, start, stop)`` like the body.

    While no ``--boundary`` is in sight, bytes go from the body straight into the caller's
    buffer and are only searched (bytearray.find); the last few, where a delimiter could
    begin, are held back and handed over with the next read. Once the boundary appears (or
    the body ends), the rest of the part goes through werkzeug's decoder, which decides
    exactly where the part ends, as it always did."""

    MIN_VIEW = 64 * 1024      # smaller reads go through a scratch buffer

    def __init__(self, form: FormStream):
        self.form = form
        self.marker = b"--" + form.boundary
        self.hold = len(self.marker) + 1        # a line break + a partial marker
        self.carry = b""
        self.fast = False
        self.done = False
        self.scratch = bytearray(READ_CHUNK)
        self.pending = memoryview(b"")          # bytes already judged file data, not handed out
        self._decoded(self._next_data())        # the decoder's first event of the part
        if not self.done:                       # hand over what the decoder still buffers
            self.carry = bytes(form.decoder.buffer)
            del form.decoder.buffer[:]
            self.fast = True

    def _next_data(self) -> Data:
        try:
            event = next(self.form._events, None)
        except ValueError as exc:
            raise APIError(400, "invalid_form", f"malformed multipart body: {exc}")
        if not isinstance(event, Data):
            raise APIError(400, "invalid_form", "malformed multipart body")
        return event

    def _decoded(self, event: Data) -> None:
        self.pending = memoryview(event.data)
        self.done = not event.more_data

    def fill(self, buf: bytearray, start: int, stop: int) -> int:
        while True:
            if self.pending:
                got = min(stop - start, len(self.pending))
                buf[start:start + got] = self.pending[:got]
                self.pending = self.pending[got:]
                return got
            if self.done:
                return 0
            if not self.fast:
                self._decoded(self._next_data())
            elif stop - start < self.MIN_VIEW:
                self.pending = memoryview(self.scratch)[:self._fast(self.scratch, 0, len(self.scratch))]
            else:
                got = self._fast(buf, start, stop)
                if got:
                    return got

    def _fast(self, buf: bytearray, start: int, stop: int) -> int:
        """Bytes up to where a delimiter could begin, written at ``buf[start:]``; 0 when the
        rest is left to the decoder (or nothing could be judged yet)."""
        c = len(self.carry)
        buf[start:start + c] = self.carry
        got = self.form.body.fill(buf, start + c, stop)
        end = start + c + got
        if not got:                             # the body ended: the decoder has the last word
            return self._to_decoder(buf, start, start, end)
        at = buf.find(self.marker, start, end)
        while at >= 0:                          # a delimiter, or file data that looks like one
            verdict = self._delimiter(buf, start, at, end)
            if verdict == "wait":
                # Not the whole delimiter line yet. werkzeug 3.1.9's decoder hands out the CR
                # before a delimiter as data when the delimiter's end comes in a later piece
                # ("...--boundary-", then "-\r\n"), so it gets the line in one piece.
                safe = max(start, at - 2)
                self.carry = bytes(buf[safe:end])
                return safe - start
            if verdict is not None:
                return self._to_decoder(buf, start, verdict, end)
            at = buf.find(self.marker, at + 1, end)
        safe = max(start, end - self.hold)
        self.carry = bytes(buf[safe:end])
        return safe - start

    def _delimiter(self, buf: bytearray, start: int, at: int, end: int):
        """Where the delimiter whose '--boundary' is at ``at`` begins (its line break), None
        if that is file data, "wait" if the bytes after it cannot tell yet."""
        if at - 2 >= start and buf[at - 2:at] == b"\r\n":
            line = at - 2
        elif at - 1 >= start and buf[at - 1] in b"\r\n":
            line = at - 1
        else:
            return None
        if self.form.decoder.boundary_re.match(buf, line, end):
            return line
        rest = bytes(buf[at + len(self.marker):end])
        return "wait" if len(rest) < 256 and not rest.strip(b" \t-") else None

    def _to_decoder(self, buf: bytearray, start: int, frm: int, end: int) -> int:
        """The rest of the part goes through the decoder, from ``buf[frm:end]`` on."""
        self.form.decoder.receive_data(bytes(buf[frm:end]))
        self.carry, self.fast = b"", False
        return frm - start
