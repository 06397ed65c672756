"""Streaming multipart/form-data for POST /api/videos: werkzeug's sans-IO decoder fed from
the request stream, so the file part flows to file-svc as it arrives and is never held
whole in memory or on disk. Text fields are small and capped."""
from __future__ import annotations

from typing import Iterator

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from svcommon.errors import APIError

READ_CHUNK = 256 * 1024
MAX_FIELDS_BYTES = 64 * 1024
# Caps the decoder's own buffer (headers or preamble without a boundary in sight); events
# are consumed after every read, so a well-formed body never comes close.
MAX_BUFFER = 1024 * 1024


class FormStream:
    def __init__(self, stream, boundary: str):
        if not boundary:
            raise APIError(400, "invalid_form", "multipart/form-data needs a boundary")
        self.stream = stream
        self.decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=MAX_BUFFER)
        self.fields: dict[str, str] = {}
        self._field_bytes = 0
        self._events = self._iter_events()

    def _iter_events(self):
        while True:
            event = self.decoder.next_event()
            if isinstance(event, NeedData):
                chunk = self.stream.read(READ_CHUNK)
                self.decoder.receive_data(chunk or None)
                if not chunk and self.decoder.state.name == "COMPLETE":
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

    def file_chunks(self) -> Iterator[bytes]:
        for event in self._events:
            if not isinstance(event, Data):
                raise APIError(400, "invalid_form", "malformed multipart body")
            if event.data:
                yield event.data
            if not event.more_data:
                return

    def rest(self) -> None:
        """Fields after the file (accepted, applied by the caller)."""
        for event in self._events:
            if isinstance(event, Field):
                self._read_field(event.name)
