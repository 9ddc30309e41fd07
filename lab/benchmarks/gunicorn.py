"""gunicorn on loopback for the HTTP benchmarks and the integration tests.

``gunicorn_start`` runs the project's WSGI app as a child process bound to 127.0.0.1 on a
free port, against the database the caller names; ``Server.stop`` ends it (and only it).
``server_env`` is the environment the load test and the benchmark give it. The load itself
comes from Locust (``lab/benchmarks/locustfile.py``, driven by ``lab/benchmarks/locust_run.py``).
Nothing here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Two sync workers for two cores; the production image runs the same app the same way.
GUNICORN_WORKERS = 2
GUNICORN_START_TIMEOUT_S = 90
# One torch thread per gunicorn worker. With torch's default (one thread per core) in each
# worker, 2 x 2 OpenMP threads fight over 2 cores; on the shared box the forward pass
# measured 3.3 images/s with 2 threads against 19-27 with 1 while other processes were busy.
SERVER_TORCH_THREADS = 1
# ONNX Runtime, which runs the forward pass on the CPU, gets one intra-op thread per core
# all the same: its threads sleep instead of spinning, so concurrent searches share the
# cores without the loss above, and a search alone runs its forward pass on both cores
# (visualsearch/embedding/config.py, ENV_ONNX_THREADS).
SERVER_ONNX_THREADS = os.cpu_count() or 1
# All the load comes from one address: the API's per-client rate limits would turn most
# of it into 429s, so a load test switches them off unless asked to keep them.
RATE_LIMITS_OFF = {
    "VISUALSEARCH_RATE_IMAGE_SEARCH": "off",
    "VISUALSEARCH_RATE_SIMILAR": "off",
    "VISUALSEARCH_RATE_SHOP_THE_LOOK": "off",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def server_env(*, settings_module: str, database_url: str, rate_limits: bool = False) -> dict[str, str]:
    """Environment overrides for a benchmarked gunicorn: DEBUG off, one torch thread per
    worker, the caller's settings and database, rate limits off unless ``rate_limits``."""
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": database_url,
        "VISUALSEARCH_TORCH_THREADS": str(SERVER_TORCH_THREADS),
        "VISUALSEARCH_ONNX_THREADS": str(SERVER_ONNX_THREADS),
        **({} if rate_limits else RATE_LIMITS_OFF),
    }


class Server:
    """A gunicorn child process; ``stop()`` ends it (and only it) by its pid."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process, self.port, self.log_path = process, port, log_path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the master stops its workers
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def gunicorn_start(*, env_overrides: dict[str, str], workers: int = GUNICORN_WORKERS, cwd: Path, log_path: Path) -> Server:
    """Start ``gunicorn config.wsgi`` on 127.0.0.1:<free port> and wait until it answers."""
    port = free_port()
    env = {**os.environ, **env_overrides}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [
        str(gunicorn), "config.wsgi:application", "--bind", f"{LOOPBACK}:{port}", "--workers", str(workers),
        "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, port, log_path)
    deadline = time.monotonic() + GUNICORN_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
            conn.request("GET", "/api/products/0/similar")
            conn.getresponse().read()
            conn.close()
            return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within {GUNICORN_START_TIMEOUT_S}s; see {log_path}")
