import numpy as np
import pytest
from django.db import connection

from shop.models import ProductImage
from visualsearch import index, indexing
from visualsearch.embedding import load_embedder
from visualsearch.models import ImageEmbedding
from visualsearch.reader import stored_image_open
from visualsearch.selectors import active_model_name
from visualsearch.pipeline import catalog_embed
from tests.factories import ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [ImageEmbedding._meta.db_table])
        return {row[0] for row in cursor.fetchall()}


def test_images_embed_stores_unit_vectors_clears_dirty_flag_and_builds_the_index():
    images = [ProductImageFactory(colour=(20 * i, 80, 160)) for i in range(3)]
    assert all(img.embedding_dirty for img in images)

    result = indexing.images_embed(image_ids=[img.id for img in images] + [987654])  # unknown id: ignored

    assert result.embedded == 3 and result.failed == []
    rows = ImageEmbedding.objects.filter(model_name="efficientnet_lite0")
    assert rows.count() == 3
    vectors = np.stack([row.vector.to_numpy() for row in rows]).astype(np.float32)
    assert vectors.shape == (3, 1280)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)  # halfvec precision
    assert not ProductImage.objects.filter(embedding_dirty=True).exists()
    assert index.hnsw_index_name("efficientnet_lite0", 1280) in _index_names()


def test_images_embed_twice_is_harmless():
    image = ProductImageFactory()
    indexing.images_embed(image_ids=[image.id])
    first = ImageEmbedding.objects.get()
    indexing.images_embed(image_ids=[image.id])
    again = ImageEmbedding.objects.get()
    assert again.pk == first.pk
    np.testing.assert_array_equal(again.vector.to_numpy(), first.vector.to_numpy())


def test_unreadable_stored_file_is_reported_and_not_retried_forever():
    image = ProductImageFactory()
    image.image.storage.delete(image.image.name)
    result = indexing.images_embed(image_ids=[image.id])
    assert result.embedded == 0 and [i for i, _ in result.failed] == [image.id]
    image.refresh_from_db()
    assert image.embedding_dirty is False
    assert not ImageEmbedding.objects.exists()


def test_sweep_embeds_dirty_images_in_batches():
    images = [ProductImageFactory() for _ in range(5)]
    assert indexing.embedding_sweep(batch_size=2) == 2
    assert indexing.embedding_sweep(batch_size=10) == 3
    assert indexing.embedding_sweep(batch_size=10) == 0
    assert ImageEmbedding.objects.count() == len(images)


def test_new_image_is_scheduled_after_commit(django_capture_on_commit_callbacks):
    from shop.images import image_check
    from shop.services import product_image_add
    from tests.factories import make_image_bytes

    product = ProductFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row, _ = product_image_add(product=product, image=image_check(make_image_bytes(pattern=4)))
        assert not ImageEmbedding.objects.exists()  # nothing before the commit
    # The embedding, then what it announced: the look, the similar strips refreshed, the cached ones dropped.
    assert len(callbacks) == 4
    assert ImageEmbedding.objects.filter(image=row).exists()  # eager Celery ran the task


def test_catalog_embed_pipeline_is_resumable_and_matches_the_direct_path():
    images = [ProductImageFactory(colour=(10 * i, 200 - 10 * i, 90)) for i in range(7)]
    report = catalog_embed(batch_size=3, limit=4)
    assert report.embedded == 4 and report.failed == []
    report = catalog_embed(batch_size=3, only_missing=True)
    assert report.embedded == 3
    assert ImageEmbedding.objects.count() == 7

    direct = load_embedder(active_model_name()).embed([stored_image_open(images[5].image.name)])[0]
    stored = ImageEmbedding.objects.get(image=images[5]).vector.to_numpy().astype(np.float32)
    assert float(direct @ stored) > 0.999


def test_catalog_embed_with_several_loader_threads_keeps_every_image_in_order():
    images = [ProductImageFactory(colour=(20 * i, 90, 200 - 20 * i)) for i in range(7)]
    seen = []
    report = catalog_embed(batch_size=2, workers=3, on_progress=seen.append)
    assert (report.embedded, report.loader_workers, seen) == (7, 3, [2, 2, 2, 1])
    expected = load_embedder(active_model_name()).embed([stored_image_open(image.image.name) for image in images])
    stored = [ImageEmbedding.objects.get(image=image).vector.to_numpy().astype(np.float32) for image in images]
    assert min(float(e @ s) for e, s in zip(expected, stored)) > 0.999


def test_loader_threads_are_sized_to_the_cores_the_forward_pass_leaves():
    from visualsearch.pipeline import MAX_LOADER_WORKERS, loader_workers

    assert loader_workers(cores=2, inference_threads=2) == 1  # the 2-core box: never zero
    assert loader_workers(cores=2, inference_threads=1) == 1
    assert loader_workers(cores=16, inference_threads=8) == 8
    assert loader_workers(cores=64, inference_threads=0) == MAX_LOADER_WORKERS  # a GPU


def test_a_bulk_embedding_leaves_fresh_planner_statistics():
    """A duplicate scan right after a bulk load was planned on "empty" statistics and ignored
    the hash bands' index (8+ minutes on the demo catalogue); the pipeline now analyses."""
    from django.db import connection

    def reltuples(table: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            return cursor.fetchone()[0]

    images = [ProductImageFactory(colour=(20 * i, 90, 200 - 20 * i)) for i in range(5)]
    # ANALYZE runs in the test's transaction: it counts exactly this test's rows.
    assert catalog_embed(batch_size=4).embedded == len(images)
    assert reltuples("visualsearch_imagefingerprint") == len(images)
    assert reltuples("visualsearch_imageembedding") == len(images)
