"""`upload FILE…`: tus uploads, resumable across runs (tus.py), one after the other, with
the same metadata for each; optionally waiting for processing."""
from __future__ import annotations

import mimetypes
import re
from pathlib import Path

import click

from ..context import Context, pass_ctx
from ..errors import EXIT_AUTH, EXIT_FAILED, CliError
from ..follow import wait_until_settled
from ..output import emit, json_option, report
from ..progress import Progress
from ..tus import DEFAULT_CHUNK, Uploader, UploadState

UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3}


def parse_size(ctx, param, value: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value or "")
    if not m or m.group(2).lower() not in UNITS or int(m.group(1)) == 0:
        raise click.BadParameter("a size such as 16MiB, 512KiB or 1048576")
    return int(m.group(1)) * UNITS[m.group(2).lower()]


def _video(client, video_id: str) -> dict | None:
    """The video as the server has it now (needs the read scope; an upload-only token gets None)."""
    try:
        return client.json("GET", f"/api/videos/{video_id}")["video"]
    except CliError as exc:
        if exc.code == "insufficient_scope":
            return None
        raise


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--title", help="Title (default: from the file name).")
@click.option("--description", help="Description.")
@click.option("--visibility", type=click.Choice(["public", "private", "password"]), help="Default: private.")
@click.option("--password", envvar="STREAMVAULT_VIDEO_PASSWORD",
              help="The video's password, with --visibility password (env STREAMVAULT_VIDEO_PASSWORD).")
@click.option("--wait", is_flag=True, help="Follow processing until each video is ready (exit 5 if it failed).")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds --wait waits per video.")
@click.option("--chunk-size", default=f"{DEFAULT_CHUNK // 1024 ** 2}MiB", show_default=True, callback=parse_size,
              help="Bytes per PATCH request.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@json_option
@pass_ctx
def upload(ctx: Context, files, title, description, visibility, password, wait, timeout, chunk_size, quiet,
           as_json):
    """Upload video FILES (tus, resumable: after an interruption run the same command again and
    each file continues where it stopped)."""
    if password and visibility not in (None, "password"):
        raise click.BadParameter("--password goes with --visibility password", param_hint="--password")
    client = ctx.client()
    uploader = Uploader(client, UploadState(), chunk_size)
    done, failed, exit_code = [], [], 0
    for path in files:
        meta = {"filename": path.name, "filetype": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                "title": title, "description": description,
                "visibility": visibility or ("password" if password else None), "password": password}
        bar = Progress(path.name, path.stat().st_size, enabled=not quiet)
        try:
            result = uploader.upload(path, meta, bar)
            bar.finish(f"uploaded, video {result.video_id}")
            item = {"file": str(path), "video_id": result.video_id, "upload_url": result.upload_url,
                    "size": result.size, "resumed_from": result.resumed_from, "bytes_sent": result.bytes_sent}
            if wait:
                item["video"] = _follow(client, result.video_id, timeout, quiet)
                if item["video"]["status"] == "failed":
                    raise CliError(f"{path.name}: processing failed: {item['video'].get('message')}", EXIT_FAILED,
                                   "processing_failed")
            else:
                item["video"] = _video(client, result.video_id)
            done.append(item)
            if not as_json:
                status = item["video"]["status"] if item["video"] else "uploaded"
                click.echo(f"{path.name}: video {result.video_id} ({status})"
                           + (f", resumed at {result.resumed_from} bytes" if result.resumed_from else ""))
        except CliError as err:
            bar.finish("failed")
            failed.append({"file": str(path), **err.as_json()})
            exit_code = exit_code or err.exit_code
            report(err, as_json=False)
            if err.exit_code == EXIT_AUTH:
                break                       # the next files would be refused the same way
    if as_json:
        emit({"uploads": done, "errors": failed}, True)
    return exit_code


def _follow(client, video_id: str, timeout: float, quiet: bool) -> dict:
    last = [""]

    def show(state: dict) -> None:
        line = f"video {video_id}: {state['status']} · {state.get('message', '')} ({state.get('progress', 0):.0f} %)"
        if not quiet and line != last[0]:
            click.echo(line, err=True)
            last[0] = line

    state = wait_until_settled(client, video_id, timeout, show)
    return _video(client, video_id) or {"id": video_id, **state}
