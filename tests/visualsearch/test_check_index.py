"""``manage.py check_index``: every kind of drift is reported, and ``--fix`` repairs it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from recommender.models import ProductLook
from shop.models import ProductImage
from tests.factories import ProductFactory, ProductImageFactory
from visualsearch import index, services
from visualsearch.models import ImageEmbedding
from visualsearch.health import index_drift_find

pytestmark = pytest.mark.django_db
MODEL = "efficientnet_lite0"
TABLE = ImageEmbedding._meta.db_table


def _store(images, dim=1280, seed=0):
    """Vectors without the CNN (fast); the index as the services build it."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(images), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    services.embeddings_store(images=images, vectors=vectors, model_name=MODEL)
    index.embedding_index_ensure(model_name=MODEL, dim=dim)


def _run(*args) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("check_index", "--json", *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


@pytest.fixture
def catalogue():
    images = [ProductImageFactory(colour=(30 * i, 90, 160)) for i in range(4)]
    _store(images)
    return images


def test_a_consistent_catalogue_has_no_drift(catalogue):
    code, report = _run()
    assert code == 0 and report["drift"] == 0
    assert not any(report["before"].values())


def test_missing_embedding_without_dirty_flag_is_reported_and_fixed(catalogue):
    lost = ProductImageFactory(colour=(10, 200, 10))
    ProductImage.objects.filter(id=lost.id).update(embedding_dirty=False)  # e.g. a message lost and the flag cleared

    code, report = _run()
    assert code == 1 and report["before"]["missing"] == 1

    code, report = _run("--fix")
    assert code == 0, report
    assert report["fix"]["embedded"] == 1
    assert ImageEmbedding.objects.filter(image=lost, model_name=MODEL, dim=1280).count() == 1


def test_dirty_images_are_pending_within_the_grace_period_then_stuck(catalogue):
    fresh = ProductImageFactory(colour=(1, 2, 250))
    old = ProductImageFactory(colour=(250, 2, 1))
    ProductImage.objects.filter(id=old.id).update(updated_at=timezone.now() - timedelta(hours=2))

    drift = index_drift_find(model_name=MODEL, grace_seconds=600)
    assert drift.pending == [fresh.id] and drift.stuck_dirty == [old.id]
    assert drift.total == 1  # pending is not drift

    code, report = _run("--fix", "--grace-seconds", "600")
    assert code == 0, report
    old.refresh_from_db()
    assert not old.embedding_dirty and ImageEmbedding.objects.filter(image=old).count() == 1
    assert report["after"]["pending"] == 1  # the fresh one is left to the workers


def test_stale_vector_of_replaced_bytes_is_reembedded(catalogue):
    image = catalogue[0]
    ProductImage.objects.filter(id=image.id).update(sha256="f" * 64, embedding_dirty=False)

    assert index_drift_find(model_name=MODEL).stale == [image.id]
    code, report = _run("--fix")
    assert code == 0, report
    assert ImageEmbedding.objects.get(image=image, model_name=MODEL).sha256 == "f" * 64


def test_embeddings_of_deleted_images_and_products_are_deleted(catalogue):
    gone_image, gone_product_image = catalogue[0], catalogue[1]
    with connection.cursor() as cursor:
        # Behind the ORM's back (a restore, hand-written SQL): the foreign keys are
        # deferred, so the orphans exist until this (never committed) transaction ends.
        cursor.execute("DELETE FROM visualsearch_imagefingerprint WHERE image_id = ANY(%s)", [[gone_image.id, gone_product_image.id]])
        cursor.execute("DELETE FROM shop_productimage WHERE id = %s", [gone_image.id])
        cursor.execute("DELETE FROM shop_productimage WHERE id = %s", [gone_product_image.id])
        cursor.execute("DELETE FROM shop_product WHERE id = %s", [gone_product_image.product_id])

    drift = index_drift_find(model_name=MODEL)
    rows = dict(ImageEmbedding.objects.values_list("image_id", "id"))
    assert drift.orphan_image == sorted([rows[gone_image.id], rows[gone_product_image.id]])
    assert drift.orphan_product == [rows[gone_product_image.id]]

    code, report = _run("--fix")
    assert code == 0, report
    assert report["fix"]["deleted_rows"] == 2
    assert set(ImageEmbedding.objects.values_list("image_id", flat=True)) == {img.id for img in catalogue[2:]}


def test_embedding_pointing_at_another_product_is_relinked(catalogue):
    other = ProductFactory()
    row = ImageEmbedding.objects.get(image=catalogue[0])
    ImageEmbedding.objects.filter(id=row.id).update(product=other)

    assert index_drift_find(model_name=MODEL).wrong_product == [row.id]
    code, report = _run("--fix")
    assert code == 0 and report["fix"]["relinked_rows"] == 1
    assert ImageEmbedding.objects.get(id=row.id).product_id == catalogue[0].product_id


def test_dimension_mismatches_are_deleted_and_reembedded(catalogue):
    small, lying = catalogue[0], catalogue[1]
    with connection.cursor() as cursor:
        # A 4-d vector stored under the 1,280-d model, and a row whose dim column lies (the
        # HNSW index's cast refuses such a row while it is canonical, so it is a copy's row).
        cursor.execute(f"UPDATE {TABLE} SET vector = '[1,0,0,0]'::halfvec, dim = 4 WHERE image_id = %s", [small.id])
        cursor.execute(
            f"UPDATE {TABLE} SET vector = '[0,1,0,0,0,0,0,0]'::halfvec, is_canonical = false WHERE image_id = %s", [lying.id]
        )

    drift = index_drift_find(model_name=MODEL)
    assert sorted(drift.dim_mismatch) == sorted(ImageEmbedding.objects.filter(image__in=[small, lying]).values_list("id", flat=True))

    code, report = _run("--fix")
    assert code == 0, report
    assert report["fix"]["deleted_rows"] == 2 and report["fix"]["embedded"] == 2
    for image in (small, lying):
        row = ImageEmbedding.objects.get(image=image, model_name=MODEL)
        assert row.dim == 1280 and len(row.vector.to_numpy()) == 1280


def test_copies_without_a_canonical_row_are_reelected(catalogue):
    data = ProductImage.objects.get(id=catalogue[0].id).image.read()
    copy = ProductImageFactory(product=ProductFactory(), data=data)  # the same bytes under another product
    _store([copy], seed=1)
    ImageEmbedding.objects.filter(sha256=copy.sha256).update(is_canonical=False)

    assert index_drift_find(model_name=MODEL).canonical == [copy.sha256]
    code, report = _run("--fix")
    assert code == 0, report
    assert ImageEmbedding.objects.filter(sha256=copy.sha256, is_canonical=True).count() == 1


def test_missing_hnsw_index_is_rebuilt(catalogue):
    name = index.hnsw_index_name(MODEL, 1280)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {name}")

    assert index_drift_find(model_name=MODEL).index_missing == name
    code, report = _run("--fix")
    assert code == 0 and report["fix"]["index_created"] == name
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        assert cursor.fetchone()[0]


def test_unreadable_file_stays_reported_and_the_command_fails(catalogue):
    broken = ProductImageFactory(colour=(0, 0, 0))
    broken.image.storage.delete(broken.image.name)
    ProductImage.objects.filter(id=broken.id).update(embedding_dirty=False)

    code, report = _run("--fix")
    assert code == 1
    assert report["fix"]["unreadable_images"] == [broken.id]
    assert report["after"]["missing"] == 1


def test_fix_with_enqueue_hands_images_to_the_workers(catalogue, django_capture_on_commit_callbacks):
    lost = ProductImageFactory(colour=(10, 10, 200))
    ProductImage.objects.filter(id=lost.id).update(embedding_dirty=False)
    # Eager Celery (no REDIS_URL in tests): the "worker" runs in process, on commit.
    with django_capture_on_commit_callbacks(execute=True) as sent:
        code, report = _run("--fix", "--enqueue")
    # The embedding task, and after it what embedding announces: the product's "complete the
    # look", its similar strip (and those it enters) refreshed, and the cached strips dropped.
    assert code == 0 and report["fix"]["enqueued"] == 1 and len(sent) == 4
    assert report["after"]["pending"] == 1  # dirty until the worker has run
    assert ImageEmbedding.objects.filter(image=lost).count() == 1
    assert ProductLook.objects.filter(product_id=lost.product_id).exists()


def test_text_report_names_each_kind(catalogue):
    out = io.StringIO()
    call_command("check_index", stdout=out)
    text = out.getvalue()
    for kind in ("missing", "stuck_dirty", "stale", "orphan_image", "orphan_product", "wrong_product", "dim_mismatch",
                 "canonical", "index_missing", "pending"):
        assert kind in text
    assert "No drift." in text


def test_another_model_reports_every_image_without_its_vectors_as_missing(catalogue):
    drift = index_drift_find(model_name="resnet50")
    assert drift.missing == sorted(img.id for img in catalogue)
    assert drift.pending == [] and drift.stuck_dirty == [] and drift.dim == 2048
    assert drift.index_missing is None  # no rows of that model: no index expected yet
