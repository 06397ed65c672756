"""`videos list|show|edit|delete`: your videos (GET /api/videos/mine, GET/PATCH/DELETE
/api/videos/{id}; the token needs read to look, upload to change)."""
from __future__ import annotations

import sys

import click

from ..context import Context, pass_ctx
from ..errors import EXIT_USAGE, CliError
from ..output import emit, json_option, video_details, video_line
from ..progress import human_size


@click.group()
def videos():
    """List, show, edit or delete your videos."""


@videos.command("list")
@json_option
@pass_ctx
def list_videos(ctx: Context, as_json):
    """Your videos, newest first, with their status and your storage use."""
    body = ctx.client().json("GET", "/api/videos/mine")

    def human():
        for v in body["items"]:
            click.echo(video_line(v))
        usage = body.get("usage") or {}
        quota = usage.get("quota_bytes")
        click.echo(f"{len(body['items'])} videos, {human_size(usage.get('used_bytes') or 0)} used"
                   + (f" of {human_size(quota)}" if quota else ""), err=True)
    emit(body, as_json, human)


@videos.command("show")
@click.argument("video_id")
@json_option
@pass_ctx
def show(ctx: Context, video_id, as_json):
    """One video's details and processing state."""
    video = ctx.client().json("GET", f"/api/videos/{video_id}")["video"]
    emit({"video": video}, as_json, lambda: video_details(video))


@videos.command("edit")
@click.argument("video_id")
@click.option("--title")
@click.option("--description")
@click.option("--visibility", type=click.Choice(["public", "private", "password"]))
@click.option("--password", envvar="STREAMVAULT_VIDEO_PASSWORD", help="New password (with visibility password).")
@click.option("--downloads/--no-downloads", default=None, help="Let viewers download watermarked copies.")
@json_option
@pass_ctx
def edit(ctx: Context, video_id, title, description, visibility, password, downloads, as_json):
    """Change a video's title, description, visibility, password or downloads."""
    changes = {k: v for k, v in {"title": title, "description": description, "visibility": visibility,
                                 "password": password, "downloads_allowed": downloads}.items() if v is not None}
    if not changes:
        raise click.UsageError("nothing to change: give --title, --description, --visibility, --password or --downloads")
    video = ctx.client().json("PATCH", f"/api/videos/{video_id}", json=changes)["video"]
    emit({"video": video}, as_json, lambda: click.echo(f"Updated: {video_line(video)}"))


@videos.command("delete")
@click.argument("video_ids", nargs=-1, required=True, metavar="VIDEO_ID...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed when stdin is not a terminal).")
@json_option
@pass_ctx
def delete(ctx: Context, video_ids, yes, as_json):
    """Delete videos with everything stored for them (no undo)."""
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("deleting cannot be undone: add --yes", EXIT_USAGE, "usage")
        if not click.confirm(f"Delete {len(video_ids)} video(s) and everything stored for them?", err=True):
            click.echo("Nothing deleted.", err=True)
            return EXIT_USAGE
    client = ctx.client()
    for vid in video_ids:
        client.request("DELETE", f"/api/videos/{vid}", ok=(204,))
        if not as_json:
            click.echo(f"Deleted {vid}")
    if as_json:
        emit({"deleted": list(video_ids)}, True)
