"""What every command gets: the server asked for (--server / STREAMVAULT_URL) and a way to
a client holding the token for it."""
from __future__ import annotations

from dataclasses import dataclass

import click

from . import config
from .api import Client


@dataclass
class Context:
    server_option: str | None

    def target(self) -> config.Target:
        return config.resolve(self.server_option)

    def client(self) -> Client:
        """A client with the stored (or STREAMVAULT_TOKEN) API token; exit 3 without one."""
        target = self.target()
        return Client(target.server, config.require_token(target))


pass_ctx = click.make_pass_decorator(Context)
