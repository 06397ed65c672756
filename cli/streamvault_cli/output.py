"""What commands print: JSON on stdout with --json (one document, for scripts), else text
for people; progress and errors go to stderr either way."""
from __future__ import annotations

import json
from typing import Callable

import click

from .errors import CliError
from .progress import human_size


def emit(data, as_json: bool, human: Callable[[], None] | None = None) -> None:
    if as_json or human is None:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        human()


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(f)


def video_line(v: dict) -> str:
    size = human_size(v["size"]) if v.get("size") else "-"
    return f"{v['id']}  {v['status']:10} {v['visibility']:9} {size:>10}  {v['title']}"


def video_details(v: dict) -> None:
    for key in ("id", "title", "description", "status", "message", "visibility", "has_password",
                "downloads_allowed", "size", "duration", "width", "height", "original_filename", "views",
                "created_at", "ready_at"):
        value = v.get(key)
        if key == "size" and value:
            value = f"{human_size(value)} ({value} bytes)"
        click.echo(f"{key + ':':19}{'' if value is None else value}")


def report(err: CliError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(err.as_json(), indent=2, sort_keys=True))
    where = f" ({err.code}, HTTP {err.status})" if err.code and err.status else (
        f" (HTTP {err.status})" if err.status else "")
    click.echo(f"streamvault: error: {err.message}{where}", err=True)
    for field, messages in err.fields.items():
        for m in messages:
            click.echo(f"  {field}: {m}", err=True)
