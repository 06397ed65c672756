"""Settings fail fast and name every problem at once."""
from __future__ import annotations

import pytest

from svcommon.config import REQUIRED, ConfigError, Setting, as_bool, load

SPEC = [Setting("A", REQUIRED, help="the a"), Setting("B", 5, int), Setting("C", False, as_bool), Setting("D", REQUIRED)]


def test_missing_and_malformed_are_all_reported():
    with pytest.raises(ConfigError) as exc:
        load(SPEC, environ={"B": "five"})
    msg = str(exc.value)
    assert "A is required (the a)" in msg and "D is required" in msg and "B='five' is invalid" in msg


def test_defaults_casts_and_overrides():
    cfg = load(SPEC, environ={"A": "x", "C": "yes", "D": "env"}, overrides={"D": "override", "TESTING": True})
    assert cfg == {"A": "x", "B": 5, "C": True, "D": "override", "TESTING": True}


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_booleans(value):
    with pytest.raises(ValueError):
        as_bool(value)


def test_service_refuses_to_start_without_required_env(monkeypatch):
    from auth_svc import create_app
    for name in ("DB_PASSWORD", "AUTH_KEY_ENCRYPTION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as exc:
        create_app()
    assert "DB_PASSWORD is required" in str(exc.value) and "AUTH_KEY_ENCRYPTION_SECRET is required" in str(exc.value)
