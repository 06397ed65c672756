"""Which failures are outages (svcommon.jobworker.outage: retried without using an attempt)
and how a failure is recorded while the database is away (_when_database_answers). Real
errors from real clients aimed at a port nobody listens on; the queue side runs on the real
database in tests/test_job_queue.py."""
from __future__ import annotations

import time

import mysql.connector
import pytest
from mysql.connector import errors as myerrors

from svcommon.filestore import FileStore, FileStoreError
from svcommon.jobworker import _when_database_answers, outage


def _database_error() -> myerrors.Error:
    try:
        mysql.connector.connect(host="127.0.0.1", port=9, user="x", password="x", connection_timeout=2)
    except myerrors.Error as exc:
        return exc
    raise AssertionError("something answers on port 9")


def _storage_error() -> FileStoreError:
    try:
        FileStore("http://127.0.0.1:9", "http://127.0.0.1:9", "watermark", "x", timeout=2).token()
    except FileStoreError as exc:
        return exc
    raise AssertionError("something answers on port 9")


def test_outages_are_named_and_the_jobs_own_failures_are_not():
    assert outage(_storage_error()) == "video storage is unavailable"
    assert outage(_database_error()) == "the database is unavailable"
    try:
        try:
            raise _storage_error()
        except FileStoreError as exc:
            raise RuntimeError("could not fetch the suspect") from exc
    except RuntimeError as wrapped:
        assert outage(wrapped) == "video storage is unavailable"
    assert outage(FileStoreError(403, "forbidden_prefix", "not yours")) is None
    assert outage(myerrors.DatabaseError(msg="Deadlock found", errno=1213)) is None      # the job's own locking
    assert outage(myerrors.DatabaseError(msg="Lock wait timeout", errno=1205)) is None
    assert outage(ValueError("not a video")) is None


def test_recording_waits_for_the_database_then_gives_up_at_the_deadline():
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise _database_error()
        return "recorded"
    assert _when_database_answers(flaky, time.monotonic() + 30) == "recorded" and len(calls) == 3

    def down():
        raise _database_error()
    with pytest.raises(myerrors.InterfaceError):
        _when_database_answers(down, time.monotonic() + 1.5)

    def refused():
        calls.append("refused")
        raise myerrors.ProgrammingError(msg="syntax", errno=1064)
    with pytest.raises(myerrors.ProgrammingError):
        _when_database_answers(refused, time.monotonic() + 30)
    assert calls.count("refused") == 1                  # a refused statement is not waited on
