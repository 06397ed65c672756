"""`login` and `token`: an API token (docs/api.md, "API tokens") made with a real sign-in and
stored in the config file; the password is used for that sign-in only, never stored.
Managing tokens (list, revoke) needs the password again: the server never lets an API token
create or revoke tokens."""
from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from urllib.parse import urlsplit

import click

from .. import config
from ..api import Client
from ..errors import EXIT_AUTH, EXIT_USAGE, CliError
from ..context import Context, pass_ctx
from ..output import emit, json_option

SCOPES = ("read", "upload", "forensics")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _password(username: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if os.environ.get("STREAMVAULT_PASSWORD"):
        return os.environ["STREAMVAULT_PASSWORD"]
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask the password on: use --password-stdin or STREAMVAULT_PASSWORD",
                       EXIT_USAGE, "usage")
    return click.prompt(f"Password for {username}", hide_input=True, err=True)


def _username(given: str | None) -> str:
    if given:
        return given
    if not sys.stdin.isatty():
        raise CliError("give --username (or STREAMVAULT_USERNAME)", EXIT_USAGE, "usage")
    return click.prompt("Username", err=True)


@contextmanager
def signed_in(server: str, username: str | None, password_stdin: bool):
    """A client on an access token of a real sign-in, whose refresh token is revoked after."""
    username = _username(username)
    pair = Client(server).json("POST", "/api/auth/login",
                               json={"username": username, "password": _password(username, password_stdin)})
    session = Client(server, pair["access_token"])
    try:
        yield session, pair["user"]
    finally:
        try:
            session.request("POST", "/api/auth/logout", json={"refresh_token": pair["refresh_token"]})
        except CliError:
            pass                     # it expires by itself; the API token is what we keep


def _scopes(value: str) -> list[str]:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    bad = [s for s in scopes if s not in SCOPES]
    if not scopes or bad:
        raise click.BadParameter(f"a comma-separated list of {', '.join(SCOPES)}", param_hint="--scopes")
    return scopes


def _print_fields(values: dict) -> None:
    for key, value in values.items():
        if value not in (None, []):
            click.echo(f"{key + ':':12}{', '.join(value) if isinstance(value, list) else value}")


def _masked(token: str) -> str:
    return token[:8] + "…" + token[-4:]


user_option = click.option("--username", "-u", envvar="STREAMVAULT_USERNAME", help="Account name (env STREAMVAULT_USERNAME; asked if missing).")
stdin_option = click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (else STREAMVAULT_PASSWORD, else asked).")


@click.command()
@user_option
@stdin_option
@click.option("--scopes", default="read,upload", show_default=True,
              help="What the token may do: read, upload, forensics (administrators).")
@click.option("--name", help="The token's name on the account page (default: streamvault-cli@<host>).")
@click.option("--expires-days", type=click.IntRange(1, 365), default=90, show_default=True)
@json_option
@pass_ctx
def login(ctx: Context, username, password_stdin, scopes, name, expires_days, as_json):
    """Sign in and store a new API token for this server (the password is not kept)."""
    server = ctx.target().server
    wanted = _scopes(scopes)
    if urlsplit(server).scheme == "http" and urlsplit(server).hostname not in LOOPBACK:
        click.echo(f"streamvault: warning: {server} is plain HTTP: the password and the token cross the "
                   "network unencrypted", err=True)
    previous = config.load()
    with signed_in(server, username, password_stdin) as (session, user):
        made = session.json("POST", "/api/auth/tokens", json={
            "name": name or f"streamvault-cli@{socket.gethostname()}"[:64], "scopes": wanted,
            "expires_in_days": expires_days})
        if previous.token_id and previous.server == server and previous.username == user["username"]:
            # The token this login replaces would otherwise stay live, unused, until it expires.
            session.request("DELETE", f"/api/auth/tokens/{previous.token_id}", ok=(204, 404))
    record = made["api_token"]
    cfg = config.Config(server=server, token=made["token"], token_id=record["id"], token_name=record["name"],
                        scopes=record["scopes"], expires_at=record["expires_at"], username=user["username"])
    path = config.save(cfg)
    out = {"server": server, "username": user["username"], "config": str(path), "api_token": record}
    emit(out, as_json, lambda: click.echo(
        f"Logged in to {server} as {user['username']}: token '{record['name']}' "
        f"({', '.join(record['scopes'])}), expires {record['expires_at']}. Saved in {path}."))


@click.group()
def token():
    """Show, set, list or revoke API tokens."""


@token.command("show")
@click.option("--reveal", is_flag=True, help="Print the whole token (e.g. to hand it to CI).")
@json_option
@pass_ctx
def token_show(ctx: Context, reveal, as_json):
    """The token in use for the server (from STREAMVAULT_TOKEN, else the config file)."""
    target, cfg = ctx.target(), config.load()
    if not target.token:
        raise CliError(f"no token for {target.server}: run `streamvault login`", EXIT_AUTH, "not_logged_in")
    from_env = bool(os.environ.get("STREAMVAULT_TOKEN"))
    out = {"server": target.server, "source": "STREAMVAULT_TOKEN" if from_env else str(config.config_dir() / "config.json"),
           "token": target.token if reveal else _masked(target.token)}
    if not from_env:
        out.update(id=cfg.token_id, name=cfg.token_name, scopes=cfg.scopes, expires_at=cfg.expires_at,
                   username=cfg.username)
    emit(out, as_json, lambda: _print_fields(out))


@token.command("set")
@click.argument("value", metavar="TOKEN")
@json_option
@pass_ctx
def token_set(ctx: Context, value, as_json):
    """Store a token made on the account page (TOKEN, or - to read it from stdin)."""
    if value == "-":
        value = sys.stdin.readline().strip()
    if not value.startswith("svt_"):
        raise click.BadParameter("API tokens start with svt_", param_hint="TOKEN")
    server = ctx.target().server
    resp = Client(server, value).request("GET", "/api/auth/profile", ok=(200, 403))
    if resp.status_code == 403 and resp.json().get("code") != "insufficient_scope":
        raise CliError(resp.json().get("error", "refused"), EXIT_AUTH, resp.json().get("code"), 403)
    username = resp.json().get("username") if resp.status_code == 200 else None
    path = config.save(config.Config(server=server, token=value, username=username))
    out = {"server": server, "username": username, "config": str(path)}
    emit(out, as_json, lambda: click.echo(f"Token for {server} saved in {path}."))


@token.command("list")
@user_option
@stdin_option
@json_option
@pass_ctx
def token_list(ctx: Context, username, password_stdin, as_json):
    """Your live API tokens (signs in: asks the password)."""
    with signed_in(ctx.target().server, username or config.load().username, password_stdin) as (session, _):
        body = session.json("GET", "/api/auth/tokens")
    def human():
        for t in body["items"]:
            click.echo(f"{t['id']}  {t['name'][:24]:24} {','.join(t['scopes']):22} expires {t['expires_at']}"
                       + ("  (expired)" if t["expired"] else ""))
    emit(body, as_json, human)


@token.command("revoke")
@click.argument("token_id", required=False)
@user_option
@stdin_option
@json_option
@pass_ctx
def token_revoke(ctx: Context, token_id, username, password_stdin, as_json):
    """Revoke TOKEN_ID (default: the stored token, which is then forgotten here)."""
    cfg = config.load()
    token_id = token_id or cfg.token_id
    if not token_id:
        raise CliError("which token? give its id (`streamvault token list`)", EXIT_USAGE, "usage")
    with signed_in(ctx.target().server, username or cfg.username, password_stdin) as (session, _):
        session.request("DELETE", f"/api/auth/tokens/{token_id}", ok=(204,))
    forgotten = token_id == cfg.token_id
    if forgotten:
        config.save(config.Config(server=cfg.server, username=cfg.username))
    emit({"revoked": token_id, "forgotten": forgotten}, as_json,
         lambda: click.echo(f"Revoked {token_id}" + (" and removed it from the config." if forgotten else ".")))
