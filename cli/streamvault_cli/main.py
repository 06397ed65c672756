"""`streamvault`: the command group, its global options and the one place where errors
become messages and exit codes (errors.py lists them)."""
from __future__ import annotations

import json
import sys

import click

from . import __version__, config
from .commands import account, trace, upload, videos
from .context import Context
from .errors import EXIT_INTERRUPTED, EXIT_USAGE, CliError
from .output import report


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--server", envvar="STREAMVAULT_URL", metavar="URL",
              help=f"The StreamVault gateway (env STREAMVAULT_URL; default: the one logged in to, else {config.DEFAULT_SERVER}).")
@click.version_option(__version__, prog_name="streamvault")
@click.pass_context
def cli(ctx: click.Context, server: str | None):
    """StreamVault from the command line: log in once (an API token is stored, never the
    password), then upload, manage and trace videos. Every command takes --json for scripts;
    exit codes: 0 ok, 1 API error, 2 usage, 3 auth, 4 not found, 5 failed (processing, trace,
    timeout), 130 interrupted."""
    ctx.obj = Context(server)


for command in (account.login, account.token, upload.upload, videos.videos, trace.trace):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        code = cli.main(args=args, prog_name="streamvault", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("\nstreamvault: interrupted (an unfinished upload resumes when the same command runs again)", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        code = exc.exit_code or EXIT_USAGE
        if as_json:
            click.echo(json.dumps({"error": exc.format_message(), "code": "usage", "status": None,
                                   "exit_code": code}, indent=2, sort_keys=True))
        exc.show()
        return code
    except CliError as err:
        report(err, as_json)
        return err.exit_code
    return code if isinstance(code, int) else 0
