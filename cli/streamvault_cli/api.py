"""HTTP to the StreamVault gateway: one requests session per command, the credential as
``Authorization: Bearer``, and every refusal turned into a CliError carrying the server's
``{"error", "code"}`` (docs/api.md) and the exit code it maps to."""
from __future__ import annotations

import re

import requests

from . import __version__
from .errors import EXIT_API, CliError, exit_code_for

TIMEOUT = (10, 60)        # connect, then at most this long between two reads of an answer


def error_from(resp: requests.Response) -> CliError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        message, code, fields = str(body["error"]), body.get("code"), body.get("fields") or {}
    else:
        text = " ".join(resp.text.split())[:200]
        message, code, fields = f"HTTP {resp.status_code} {resp.reason or ''}".strip() + (f": {text}" if text else ""), None, {}
    retry = resp.headers.get("Retry-After")
    if retry and resp.status_code in (429, 503):
        message += f" (retry after {retry} s)"
    return CliError(message, exit_code_for(resp.status_code), code, resp.status_code, fields)


def _reason(exc: requests.RequestException) -> str:
    """The useful end of urllib3's nested message ("[Errno 111] Connection refused")."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    return found.group(0) if found else type(exc).__name__


class Client:
    def __init__(self, server: str, token: str | None = None):
        self.server = server
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"streamvault-cli/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.server + path

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202, 204),
                timeout=TIMEOUT, **kw) -> requests.Response:
        try:
            resp = self.session.request(method, self.url(path), timeout=timeout, **kw)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.server}: {_reason(exc)}", EXIT_API, "unreachable") from exc
        if resp.status_code not in ok:
            raise error_from(resp)
        return resp

    def json(self, method: str, path: str, **kw) -> dict:
        resp = self.request(method, path, **kw)
        return resp.json() if resp.content else {}
