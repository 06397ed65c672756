"""requirements.lock is the one source of Python versions (the venv and every image install
from it): it must pin every package the inputs ask for, within their ranges, with hashes,
and docker/locked.py must give each image what its service asks for."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docker"))

import locked  # noqa: E402


def _inputs() -> dict[str, list[Requirement]]:
    """Root (as docker/locked.py names it) -> the requirements it declares."""
    out = {root: [Requirement(r) for r in tomllib.loads((ROOT / path).read_text())["project"]["dependencies"]]
           for root, path in (("svcommon", "common/pyproject.toml"), ("streamvault-cli", "cli/pyproject.toml"))}
    for f in [ROOT / "requirements-dev.txt", *ROOT.glob("*/requirements*.txt")]:
        root = f.parent.name if f.parent != ROOT else "requirements-dev.txt"
        lines = [ln.split("#")[0].strip() for ln in f.read_text().splitlines()]
        out.setdefault(root, []).extend(Requirement(ln) for ln in lines if ln)
    return out


def _pins(entries: list[str]) -> dict[str, str]:
    return {canonicalize_name(e.split("==")[0]): e.split("==")[1].split()[0] for e in entries}


def test_lock_pins_every_input_within_its_range_with_hashes():
    lock = locked.entries((ROOT / "requirements.lock").read_text())
    pins = _pins([text for name, (text, _) in lock.items() if name != "#"])
    assert all("--hash=sha256:" in text for name, (text, _) in lock.items() if name != "#")
    for root, reqs in _inputs().items():
        for req in reqs:
            name = canonicalize_name(req.name)
            assert name in pins, f"{req} ({root}) is not in requirements.lock: regenerate it"
            assert req.specifier.contains(pins[name], prereleases=True), (root, str(req), pins[name])


def test_each_image_gets_its_services_packages():
    lock = locked.entries((ROOT / "requirements.lock").read_text())
    for root, reqs in _inputs().items():
        if root == "requirements-dev.txt":
            continue
        got = _pins(locked.needed(lock, [root]))
        assert {canonicalize_name(r.name) for r in reqs} <= set(got), root
    assert "pytest" not in _pins(locked.needed(lock, ["svcommon", "auth-svc", "watermark-svc"]))
