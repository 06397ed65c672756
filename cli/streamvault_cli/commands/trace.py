"""`trace FILE`: submit a suspect copy to the forensics API (administrators, a token with the
forensics scope: docs/api.md, watermark-svc), wait for the detection, print the verdict and
the evidence report's link."""
from __future__ import annotations

import time
from pathlib import Path

import click

from ..bodies import MultipartFile
from ..context import Context, pass_ctx
from ..errors import EXIT_FAILED, CliError
from ..output import emit, json_option, report
from ..progress import Progress

FINISHED = ("done", "failed", "cancelled")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--video", "video_id", metavar="ID", help="The video it is a copy of, if known (skips identification).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the verdict.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@json_option
@pass_ctx
def trace(ctx: Context, file, video_id, wait, timeout, quiet, as_json):
    """Trace a leaked copy FILE to the playback session it came from."""
    client = ctx.client()
    bar = Progress(file.name, file.stat().st_size, enabled=not quiet)
    body = MultipartFile({"video_id": video_id} if video_id else {}, "file", str(file), "video/mp4", bar.advance)
    try:
        bar.start(0)
        job = client.json("POST", "/api/forensics/detect", data=body, ok=(202,), timeout=(10, 600),
                          headers={"Content-Type": body.content_type})
    finally:
        body.close()
    bar.finish(f"submitted, detection {job['job_id']}")
    if not wait:
        out = {**job, "status": "queued", "status_url": client.url(job["status_url"]),
               "report_url": client.url(job["report_url"])}
        emit(out, as_json, lambda: click.echo(f"Detection {job['job_id']} queued; its status: {out['status_url']}"))
        return 0
    det = _wait(client, job["job_id"], timeout, quiet)
    result = det.get("result") or {}
    report_url = client.url(result.get("report_url") or job["report_url"])
    out = {**det, "report_url": report_url, "report_json_url": client.url(f"/api/forensics/detect/{det['job_id']}/report.json")}
    if det["status"] != "done":
        if as_json:
            emit(out, True)
        report(CliError(f"detection {det['job_id']} {det['status']}: {det.get('error') or 'no reason given'}",
                        EXIT_FAILED, f"detection_{det['status']}"), as_json=False)
        return EXIT_FAILED
    emit(out, as_json, lambda: _verdict(det, result, report_url))
    return 0


def _wait(client, job_id: str, timeout: float, quiet: bool) -> dict:
    deadline, polls, last = time.monotonic() + timeout, 0, None
    while True:
        det = client.json("GET", f"/api/forensics/detect/{job_id}")
        step = (det["status"], det.get("step"), round(det.get("progress") or 0))
        if not quiet and step != last:
            detail = f" · {det['step']} {step[2]} %" if det.get("step") not in (None, "", det["status"]) else ""
            click.echo(f"detection {job_id}: {det['status']}{detail}", err=True)
            last = step
        if det["status"] in FINISHED:
            return det
        if time.monotonic() > deadline:
            raise CliError(f"detection {job_id} not finished after {timeout:.0f} s (still {det['status']})",
                           EXIT_FAILED, "timeout")
        polls += 1
        time.sleep(min(5.0, 0.5 + 0.25 * polls))


def _verdict(det: dict, result: dict, report_url: str) -> None:
    match = result.get("match")
    if match:
        user = match.get("user") or {}
        click.echo(f"MATCH: session {match['session_id']} of {user.get('username', '?')} "
                   f"(device {match.get('device_id')}, {match.get('ip')}, started {match.get('started_at')})")
        click.echo(f"false-accusation probability: {result.get('false_accusation_probability')}")
    else:
        click.echo("NO MATCH")
    if result.get("conclusion"):
        click.echo(f"conclusion: {result['conclusion']}")
    if result.get("video_id"):
        click.echo(f"video: {result['video_id']} {result.get('video_title') or ''}".rstrip())
    click.echo(f"report: {report_url}")
