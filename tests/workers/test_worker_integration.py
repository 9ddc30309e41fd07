"""A real Celery worker process against the Redis on 127.0.0.1:6379 embeds a new upload and writes its similar strip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from config.database import database_url_from_settings
from recommender.models import SimilarStrip
from shop.images import image_check
from shop.services import product_image_add
from tests.factories import ProductFactory, make_image_bytes
from tests.workers.processes import redis_up, reset_celery_pools
from visualsearch.models import ImageEmbedding
from workers.celery import app as celery_app

REPO = Path(__file__).resolve().parents[2]
# A Redis database of its own, so that a stale message from another run cannot interfere.
BROKER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WORKER_TIMEOUT_S = 120

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def real_broker():
    if not redis_up():
        pytest.skip("Redis is not listening on 127.0.0.1:6379")
    redis.Redis.from_url(BROKER_URL).flushdb()
    # The app reads Django settings under the CELERY_ namespace, and prefixed keys win over
    # plain ones, so override those. An earlier eager test may have left connection pools
    # cached for the old broker URL: drop them so that this process publishes to Redis.
    keys = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL")
    saved = {k: celery_app.conf[k] for k in keys}
    reset_celery_pools(celery_app)
    celery_app.conf.update(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=BROKER_URL)
    yield BROKER_URL
    celery_app.conf.update(saved)
    reset_celery_pools(celery_app)


@pytest.fixture
def worker(real_broker, settings, transactional_db):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": real_broker,
        "DATABASE_URL": database_url_from_settings(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "embeddings,default",
         "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", "pytest@%h"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_worker_embeds_a_newly_uploaded_image(worker):
    product = ProductFactory()
    # Autocommit (transactional test): on_commit fires at once and publishes to Redis.
    row, _ = product_image_add(product=product, image=image_check(make_image_bytes(pattern=6)))

    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while time.monotonic() < deadline and worker.poll() is None:
        # The embedding, then what it announced: the product's precomputed similar strip.
        if ImageEmbedding.objects.filter(image=row).exists() and SimilarStrip.objects.filter(product=product).exists():
            break
        time.sleep(0.5)
    else:
        worker.terminate()
        output = worker.communicate(timeout=20)[0]
        pytest.fail(f"the worker did not embed image {row.id} and write its strip within {WORKER_TIMEOUT_S}s:\n{output[-4000:]}")

    embedding = ImageEmbedding.objects.get(image=row)
    assert embedding.dim == 1280 and embedding.product_id == product.id
    row.refresh_from_db()
    assert row.embedding_dirty is False
    # ...and it was the worker process that did it, not an eager call in this process.
    worker.terminate()
    output = worker.communicate(timeout=30)[0]
    assert "visualsearch.tasks.embed_images" in output and "succeeded" in output, output[-4000:]
    assert "recommender.tasks.similar_strips_after_embedding" in output, output[-4000:]
