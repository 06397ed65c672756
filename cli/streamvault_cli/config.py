"""Where the CLI keeps what it knows: ``config.json`` (server URL and API token, mode 0600)
and ``uploads.json`` (unfinished tus uploads, for resuming), in ``$XDG_CONFIG_HOME/streamvault``
(``~/.config/streamvault``). ``--server`` / ``STREAMVAULT_URL`` and ``STREAMVAULT_TOKEN``
override the file; the stored token is only ever sent to the server it was made for."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from .errors import EXIT_AUTH, EXIT_USAGE, CliError

DEFAULT_SERVER = "http://127.0.0.1:8080"


@dataclass
class Config:
    server: str | None = None
    token: str | None = None
    token_id: str | None = None        # known when `login` made it (`token revoke` needs it)
    token_name: str | None = None
    scopes: list[str] = field(default_factory=list)
    expires_at: str | None = None
    username: str | None = None


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "streamvault"


def write_private(path: Path, data: dict) -> None:
    """Written whole (temp file + rename) and readable by the owner only, from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)       # an older file's looser mode is not inherited
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE, "bad_config")
    return data if isinstance(data, dict) else {}


def load() -> Config:
    data = read_json(config_dir() / "config.json")
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in data.items() if k in known})


def save(cfg: Config) -> Path:
    path = config_dir() / "config.json"
    write_private(path, {k: v for k, v in asdict(cfg).items() if v not in (None, [])})
    return path


def normalize_server(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"the server must be an http:// or https:// URL, not {url!r}", EXIT_USAGE, "bad_server")
    return url


@dataclass(frozen=True)
class Target:
    """The server to talk to and the token for it (None: not logged in)."""
    server: str
    token: str | None


def resolve(server_option: str | None) -> Target:
    cfg = load()
    server = normalize_server(server_option or cfg.server or DEFAULT_SERVER)
    token = os.environ.get("STREAMVAULT_TOKEN") or None
    if token is None and cfg.token and cfg.server and normalize_server(cfg.server) == server:
        token = cfg.token
    return Target(server, token)


def require_token(target: Target) -> str:
    if not target.token:
        raise CliError(f"not logged in to {target.server}: run `streamvault login` (or set STREAMVAULT_TOKEN)",
                       EXIT_AUTH, "not_logged_in")
    return target.token
