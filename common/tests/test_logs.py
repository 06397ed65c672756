"""svcommon.logs: library loggers stay quiet below WARNING (issue #12 item 7)."""
from __future__ import annotations

import logging

import pytest

from svcommon import logs

LIBRARIES = ("mysql.connector", "botocore", "urllib3", "werkzeug")


@pytest.fixture
def library_levels():
    """Give each library logger back the level it had (other tests share the root)."""
    saved = {name: logging.getLogger(name).level for name in LIBRARIES}
    for name in saved:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_mysql_connector_plugin_chatter_is_not_logged_at_info(library_levels):
    logs.configure("test-svc", "INFO")
    connector = logging.getLogger("mysql.connector")     # the logger mysql.connector.logger uses
    assert not connector.isEnabledFor(logging.INFO)
    assert connector.isEnabledFor(logging.WARNING)
    for name in LIBRARIES[1:]:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name


def test_library_level_follows_a_stricter_log_level(library_levels):
    logs.configure("test-svc", "ERROR")
    assert not logging.getLogger("mysql.connector").isEnabledFor(logging.WARNING)
    assert logging.getLogger("mysql.connector").isEnabledFor(logging.ERROR)
