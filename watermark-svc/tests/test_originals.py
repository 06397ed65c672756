"""The workers' local copies of originals on the persistent scratch volume: a worker that
was killed (SIGKILL: no clean exit, no clear()) leaves its copies; the next worker to start
removes them, and never a live worker's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from watermark_svc.originals import OriginalCache, sweep_stale

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def killed_worker_copy(work_dir) -> str:
    """A real process that makes its cache, copies an 'original' in and is SIGKILLed."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from watermark_svc.originals import OriginalCache
        cache = OriginalCache({str(work_dir)!r})
        (cache.open() / "v1").mkdir()
        (cache.root / "v1" / "original").write_bytes(b"x" * 1000)
        print(cache.root.name, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "watermark-svc"),
                                                        os.path.join(ROOT, "common")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()


def test_a_killed_workers_copies_are_swept_at_start_and_a_live_ones_kept(tmp_path):
    dead = killed_worker_copy(tmp_path)
    assert (tmp_path / dead / "v1" / "original").is_file()        # left behind for good, so far
    legacy = tmp_path / "sv-originals-123-abcdef"                  # made before the locks
    (legacy / "v2").mkdir(parents=True)
    live = OriginalCache(tmp_path)
    (live.open() / "v3").mkdir()
    other = tmp_path / "sv-chunk-something"                       # not a cache: not ours to touch
    other.mkdir()

    assert sorted(sweep_stale(tmp_path)) == sorted([dead, legacy.name])
    assert not (tmp_path / dead).exists() and not legacy.exists()
    assert not (tmp_path / (dead + ".lock")).exists()
    assert (live.root / "v3").is_dir() and other.is_dir()
    live.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sv-chunk-something"]
    assert sweep_stale(tmp_path) == []


def test_a_cache_reopened_after_clear_holds_a_lock_again(tmp_path):
    cache = OriginalCache(tmp_path)
    cache.open()
    cache.clear()
    (cache.open() / "v").mkdir()
    assert sweep_stale(tmp_path) == [] and (cache.root / "v").is_dir()
    cache.clear()
