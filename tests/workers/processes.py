"""Helpers for tests that start real processes (Celery workers, gunicorn, PostgreSQL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset_celery_pools(app) -> None:
    # Dropped, not closed: kombu's global producer registry may still hold a closed pool.
    app._pool = None
    app.amqp._producer_pool = None


def worker_start(*, env: dict[str, str], log_path: Path, name: str, extra_args: tuple[str, ...] = (),
                 pool: str = "solo") -> subprocess.Popen:
    """``celery worker`` as production runs it (solo pool, prefetch 1, acks late via settings);
    ``pool="prefork"`` runs one forked child (``--concurrency=1``) under the worker."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the child holds it
    pool_args = ("--pool=prefork", "--concurrency=1") if pool == "prefork" else (f"--pool={pool}",)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "embeddings,default", *pool_args,
         "--prefetch-multiplier=1", "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", f"{name}@%h",
         *extra_args],
        cwd=REPO, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        stdout=log, stderr=subprocess.STDOUT,
    )


def process_stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.25, what: str = "",
             alive: subprocess.Popen | None = None, log_path: Path | None = None) -> float:
    """Poll until ``predicate()``; return the seconds it took, or fail with the log's tail."""
    import pytest

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        if alive is not None and alive.poll() is not None:
            break
        time.sleep(interval)
    tail = log_path.read_text(errors="replace")[-4000:] if log_path and log_path.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{tail}")
