"""Request bodies streamed from disk with a known length (requests sends Content-Length
and reads them in blocks, so a large file is never held in memory), counting the bytes as
they go out for the progress bar."""
from __future__ import annotations

import os
import uuid
from typing import BinaryIO, Callable

OnRead = Callable[[int], None]


class FileSlice:
    """``length`` bytes of ``fh`` from its current position: one tus PATCH body."""

    def __init__(self, fh: BinaryIO, length: int, on_read: OnRead):
        self.fh, self.left, self.length, self.on_read = fh, length, length, on_read

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.fh.read(self.left if size is None or size < 0 else min(size, self.left))
        self.left -= len(data)
        self.on_read(len(data))
        return data


class MultipartFile:
    """``multipart/form-data`` with plain text fields and one file part, streamed."""

    def __init__(self, fields: dict[str, str], file_field: str, path: str, content_type: str, on_read: OnRead):
        self.boundary = uuid.uuid4().hex
        name = os.path.basename(path).replace('"', "_").replace("\r", "_").replace("\n", "_")
        head = "".join(f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                       for k, v in fields.items())
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{name}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n")
        self.parts = [head.encode("utf-8"), None, f"\r\n--{self.boundary}--\r\n".encode()]
        self.size = os.path.getsize(path)
        self.fh = open(path, "rb")
        self.on_read = on_read
        self.length = len(self.parts[0]) + self.size + len(self.parts[2])
        self.index, self.pos = 0, 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        size = self.length if size is None or size < 0 else size
        out = bytearray()
        while len(out) < size and self.index < len(self.parts):
            part = self.parts[self.index]
            if part is None:                            # the file itself
                data = self.fh.read(size - len(out))
                if data:
                    self.on_read(len(data))
                    out += data
                    continue
            else:
                data = part[self.pos:self.pos + size - len(out)]
                self.pos += len(data)
                out += data
                if self.pos < len(part):
                    continue
            self.index, self.pos = self.index + 1, 0
        return bytes(out)

    def close(self) -> None:
        self.fh.close()
