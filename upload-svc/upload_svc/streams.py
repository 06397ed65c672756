"""Caps on open progress streams (GET /api/videos/{id}/events).

Each open stream holds one of the worker process's threads (gthread) for its lifetime, so
without caps a handful of users (or one user with many tabs) can take every thread and
stall uploads and the API. Two caps, both answered with 429 + Retry-After:

- per worker process, SSE_MAX_STREAMS_PER_WORKER (keep it well below gunicorn's
  ``--threads``, 8): the rest of the threads always serve uploads and API calls, whoever
  opens the streams;
- per user, SSE_MAX_STREAMS_PER_USER, counted in the database (``event_streams``) so the
  cap holds across processes and replicas; each row carries a lease the stream renews, so a
  killed process's rows lapse by themselves.
"""
from __future__ import annotations

import threading
import time
import uuid

from flask import Flask, current_app

from svcommon.errors import APIError

from . import repository as repo
from .extensions import db, sse_slots

LEASE_SECONDS = 30           # a stream renews its row every LEASE_SECONDS / 3

class Slot:
    """One open stream: a thread slot of this process and a row in event_streams."""

    def __init__(self, app: Flask, user_id: str):
        self.app, self.user_id, self.id = app, user_id, uuid.uuid4().hex
        self.renewed = time.monotonic()
        self._released = False
        self._lock = threading.Lock()

    @classmethod
    def take(cls, conn, user_id: str) -> "Slot":
        app = current_app._get_current_object()
        sem = sse_slots(app)
        if not sem.acquire(blocking=False):
            raise APIError(429, "streams_busy", "Too many progress streams are open on this server; "
                           "retrying shortly helps (the video list still shows the status).", {"Retry-After": "10"})
        slot = cls(app, user_id)
        try:
            limit = int(app.config["SSE_MAX_STREAMS_PER_USER"])
            repo.lock_user_row(conn, user_id)          # serialises one user's opens across processes
            repo.drop_lapsed_streams(conn, user_id)
            open_now = repo.open_streams(conn, user_id)
            if open_now >= limit:
                conn.rollback()
                raise APIError(429, "too_many_streams", f"You already have {open_now} progress streams open "
                               f"(the limit is {limit}); close other tabs or wait for them to finish.",
                               {"Retry-After": "10"})
            repo.insert_stream(conn, slot.id, user_id, LEASE_SECONDS)
            conn.commit()
        except BaseException:
            sem.release()
            raise
        return slot

    def renew(self) -> None:
        """Called from the stream's loop (within the app context)."""
        if time.monotonic() - self.renewed >= LEASE_SECONDS / 3:
            self.renewed = time.monotonic()
            with db.standalone() as conn:
                repo.renew_stream(conn, self.id, LEASE_SECONDS)
                conn.commit()

    def release(self) -> None:
        """Response closed (finished, client gone, or error): idempotent."""
        with self._lock:
            if self._released:
                return
            self._released = True
        sse_slots(self.app).release()
        try:
            with self.app.app_context(), db.standalone() as conn:
                repo.delete_stream(conn, self.id)
                conn.commit()
        except Exception:   # the lease lapses on its own
            self.app.logger.warning("could not delete an event_streams row", exc_info=True)
