"""Exit codes (documented in cli/README.md, stable for scripts) and the one error type every
command raises: a message for people plus the server's ``code`` slug when there is one."""
from __future__ import annotations

EXIT_OK = 0
EXIT_API = 1           # the server refused (any other 4xx/5xx) or could not be reached
EXIT_USAGE = 2         # bad command line (click's own usage errors use 2 as well)
EXIT_AUTH = 3          # not logged in, token invalid/expired/revoked, or a scope/role missing
EXIT_NOT_FOUND = 4     # no such video, upload or detection (or not yours)
EXIT_FAILED = 5        # processing failed, a trace failed or was cancelled, a wait timed out
EXIT_INTERRUPTED = 130  # Ctrl-C; an upload is resumed by running the same command again


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_API, code: str | None = None,
                 status: int | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
        self.status = status
        self.fields = fields or {}

    def as_json(self) -> dict:
        out = {"error": self.message, "code": self.code, "status": self.status, "exit_code": self.exit_code}
        if self.fields:
            out["fields"] = self.fields
        return out


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return EXIT_AUTH
    if status in (404, 410):
        return EXIT_NOT_FOUND
    return EXIT_API
