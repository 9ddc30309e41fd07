"""The similar strips' card cache (``RECOMMENDER_SIMILAR_TTL``, off in the other tests): a
repeated strip costs only the load of its products, a hidden product leaves it at once, and
new vectors stored by the workers invalidate every strip."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.selectors import product_similar
from shop.models import Product
from tests.factories import ProductFactory, ProductImageFactory
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch.indexing import images_embed

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    settings.RECOMMENDER_SIMILAR_TTL = 60
    cache.clear()
    yield
    cache.clear()


def _product(catalogue, key: str) -> Product:
    return Product.objects.select_related("category").get(id=catalogue.products[key].id)


def _ids(similar) -> list[int]:
    return [m.product.id for m in similar.matches]


def test_a_repeated_strip_is_read_from_the_cache(catalogue, cached):
    product = _product(catalogue, "red_tee")
    first = product_similar(product=product, k=5)
    with CaptureQueriesContext(connection) as captured:
        again = product_similar(product=product, k=5)
    assert _ids(again) == _ids(first) and len(first.matches) == 5
    assert [m.score for m in again.matches] == [m.score for m in first.matches]
    # The active model (read every time in tests), the precomputed strip (none here) and the
    # cards (products, their images): no vector, no duplicates, no search.
    assert len(captured) == 4


def test_a_cached_fallback_still_says_which_category_it_used(catalogue, cached):
    product = _product(catalogue, "green_shirt")
    first = product_similar(product=product, k=20, same_category=True)
    again = product_similar(product=product, k=20, same_category=True)
    assert first.fell_back and again.fell_back
    assert again.category == first.category == catalogue.categories["apparel"]
    assert again.requested_category == catalogue.categories["shirts"] and again.note == first.note
    assert _ids(again) == _ids(first)
    # Each key its own strip: k and the category option are part of it.
    assert _ids(product_similar(product=product, k=3, same_category=True)) == _ids(first)[:3]
    assert not product_similar(product=product, k=3, same_category=False).fell_back


def test_a_product_hidden_after_caching_leaves_the_strip_at_once(catalogue, cached):
    product = _product(catalogue, "red_tee")
    first = product_similar(product=product, k=5)
    gone = first.matches[0].product.id
    Product.objects.filter(id=gone).update(status=Product.Status.HIDDEN)
    again = product_similar(product=product, k=5)
    assert gone not in _ids(again) and _ids(again) == _ids(first)[1:]


def test_vectors_stored_by_the_workers_invalidate_the_strips(catalogue, cached, django_capture_on_commit_callbacks):
    product = _product(catalogue, "red_tee")
    before = _ids(product_similar(product=product, k=20))
    twin = ProductFactory(category=catalogue.categories["tshirts"])
    image = ProductImageFactory(product=twin, data=catalogue.images["red_tee"])  # the same picture, another listing
    with django_capture_on_commit_callbacks(execute=True):
        images_embed(image_ids=[image.id])  # what the workers' task runs; sends images_embedded
    after = product_similar(product=product, k=20)
    assert twin.id not in before
    assert after.matches[0].product.id == twin.id and after.matches[0].score > 0.99


def test_a_cache_that_does_not_answer_costs_a_computed_strip_not_an_error(catalogue, cached, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    product = _product(catalogue, "red_tee")
    expected = _ids(product_similar(product=product, k=5))
    monkeypatch.setattr(cache, "get_many", down)
    monkeypatch.setattr(cache, "set", down)
    assert _ids(product_similar(product=product, k=5)) == expected
    assert "similar-strip cache unavailable" in caplog.text
