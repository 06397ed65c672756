"""Per-app state as a Flask extension (flaskr style): created unbound in a service's
``extensions.py``, bound in ``create_app`` with ``init_app``, read with a call.

One object per app, not per process: a process that builds several apps (tests, CLI
commands, a worker next to its app) never shares clients, keys or caches between them.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Mapping, TypeVar

from flask import Flask, current_app

T = TypeVar("T")


class PerApp(Generic[T]):
    """``thing = PerApp("svc.thing", build)``; ``thing.init_app(app)`` stores
    ``build(app.config)`` in ``app.extensions``; ``thing()`` returns the current app's
    object, ``thing(app)`` a given app's (workers and threads outside a request)."""

    def __init__(self, name: str, build: Callable[[Mapping[str, Any]], T]):
        self.name = name
        self._build = build

    def init_app(self, app: Flask) -> T:
        obj = app.extensions[self.name] = self._build(app.config)
        return obj

    def __call__(self, app: Flask | None = None) -> T:
        return (app or current_app).extensions[self.name]
