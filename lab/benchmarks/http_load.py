"""HTTP latency and throughput of the API under gunicorn, on loopback only.

``gunicorn_start`` runs the project's WSGI app as a child process bound to 127.0.0.1 on
a free port, against the database the caller uses; ``load_run`` sends requests from a
few client threads with ``http.client`` until a time limit or a request cap, whichever
comes first. Nothing here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.metrics import percentiles

LOOPBACK = "127.0.0.1"
# Two sync workers for two cores; the production image runs the same app the same way.
GUNICORN_WORKERS = 2
GUNICORN_START_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None
    label: str = ""  # requests of one label get their own percentiles (mixed traffic)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def multipart_body(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, ctype) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Server:
    """A gunicorn child process; ``stop()`` ends it (and only it) by its pid."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process, self.port, self.log_path = process, port, log_path

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


def _send(conn: http.client.HTTPConnection, request: Request, cookies: dict[str, str] | None = None) -> int:
    headers = {"Connection": "keep-alive"}
    if request.content_type:
        headers["Content-Type"] = request.content_type
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn.request(request.method, request.path, body=request.body, headers=headers)
    response = conn.getresponse()
    response.read()
    if cookies is not None:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
    return response.status


def load_run(
    *,
    port: int,
    make_request: Callable[[int], Request],
    clients: int,
    seconds: float,
    max_requests: int,
    warmup: int = 0,
    keep_cookies: bool = False,
) -> dict:
    """Send requests from ``clients`` threads for ``seconds`` (at most ``max_requests``).

    ``make_request(i)`` gives the i-th request. Each thread keeps one keep-alive
    connection. With ``clients=1`` this is the single-client latency. Returns latency
    percentiles of the successful (2xx) requests, the throughput, and error counts; with
    labelled requests, the same per label under ``by_label``. ``keep_cookies``: each
    thread is one visitor that sends back its cookies (a session, as a browser would).
    """
    for i in range(warmup):
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
        try:
            _send(conn, make_request(i))
        finally:
            conn.close()
    lock = threading.Lock()
    counter = iter(range(max_requests))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    labelled: dict[str, dict] = {}
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
        cookies: dict[str, str] | None = {} if keep_cookies else None
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                request = make_request(i)
                started = time.perf_counter()
                try:
                    status = _send(conn, request, cookies)
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
                elapsed = (time.perf_counter() - started) * 1000.0
                ok = isinstance(status, int) and 200 <= status < 300
                with lock:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    if ok:
                        latencies.append(elapsed)
                    if request.label:
                        entry = labelled.setdefault(request.label, {"latencies": [], "statuses": {}})
                        entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
                        if ok:
                            entry["latencies"].append(elapsed)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT_S + 5)
    wall = time.perf_counter() - started
    total = sum(statuses.values())
    ok = len(latencies)
    out = {
        "clients": clients,
        "seconds": wall,
        "requests": total,
        "ok": ok,
        "errors": total - ok,
        "statuses": statuses,
        "throughput_rps": ok / wall if wall else 0.0,
        **percentiles(np.asarray(latencies), (50, 95, 99)),
    }
    if labelled:
        out["by_label"] = {}
        for label, entry in sorted(labelled.items()):
            n_all, n_ok = sum(entry["statuses"].values()), len(entry["latencies"])
            out["by_label"][label] = {
                "requests": n_all, "ok": n_ok, "errors": n_all - n_ok, "statuses": entry["statuses"],
                "throughput_rps": n_ok / wall if wall else 0.0,
                **percentiles(np.asarray(entry["latencies"]), (50, 95, 99)),
            }
    return out


def generated_photo(i: int) -> bytes:
    """A seeded 360x480 noise JPEG, for photo searches when no real photos are at hand."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(i)
    pixels = (rng.random((480, 360, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def api_requests(product_ids: Sequence[int], photos: Sequence[bytes], k: int = 12) -> dict[str, Callable[[int], Request]]:
    """Request makers for the two endpoints: similar items of a cycle of products, and
    image search with a cycle of photos."""
    bodies = [multipart_body({"k": str(k)}, {"image": ("photo.jpg", data, "image/jpeg")}) for data in photos]

    def similar(i: int) -> Request:
        return Request("GET", f"/api/products/{product_ids[i % len(product_ids)]}/similar?k={k}")

    def search(i: int) -> Request:
        body, ctype = bodies[i % len(bodies)]
        return Request("POST", "/api/search/image", body=body, content_type=ctype)

    return {"similar": similar, "search_image": search}
