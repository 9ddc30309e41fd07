"""A filter that leaves few products is searched exactly: its products' rows ordered by
distance, without the HNSW graph (which would walk most of itself to find them)."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shop.filters import ProductFilters
from tests.visualsearch.random_catalogue import MODEL, random_indexed_catalogue
from visualsearch import selectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(settings):
    settings.VISUALSEARCH_MODEL = MODEL
    images, vectors, _ = random_indexed_catalogue(small="hats", every=5, size=40, seed=3)
    selectors._statements.clear()
    yield images, vectors
    selectors._statements.clear()


def _search(vector, filters, k=5):
    with CaptureQueriesContext(connection) as captured:
        hits = selectors.nearest_hits(vector=vector, k=k, filters=filters, model_name=MODEL)
    searches = [q["sql"] for q in captured.captured_queries if "<=>" in q["sql"]]
    assert len(searches) == 1
    return hits, searches[0], captured.captured_queries


def _numpy_nearest(images, vectors, query, keep, k):
    rows = [n for n, image in enumerate(images) if keep(image)]
    order = np.argsort(-(vectors[rows] @ query))[:k]
    return [images[rows[n]].product_id for n in order]


def test_a_small_category_is_searched_exactly(catalogue):
    images, vectors = catalogue
    query = vectors[7] + 0.5 * vectors[10]
    query /= np.linalg.norm(query)
    hits, sql, _ = _search(query, ProductFilters(category="hats"))
    assert "is_canonical" not in sql  # not the index's predicate: the graph is not walked
    expected = _numpy_nearest(images, vectors, query, lambda image: image.product.category.slug == "hats", 5)
    assert [hit.product_id for hit in hits] == expected
    assert hits[0].score == pytest.approx(float(vectors[[i.product_id for i in images].index(expected[0])] @ query), abs=2e-3)


def test_a_large_filter_and_no_filter_use_the_index(catalogue, settings):
    images, vectors = catalogue
    settings.VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS = 5  # the 8 hats are "many" now
    _, sql, _ = _search(vectors[0], ProductFilters(category="hats"))
    assert "is_canonical" in sql
    _, plain, queries = _search(vectors[0], None)
    assert "is_canonical" in plain
    assert not any("COUNT(" in q["sql"].upper() for q in queries)  # no filter, nothing to count


def test_the_exact_search_ranks_every_product_of_the_filter_as_numpy_does(catalogue):
    images, vectors = catalogue
    hats = lambda image: image.product.category.slug == "hats"  # noqa: E731
    hits, _, _ = _search(vectors[5], ProductFilters(category="hats"), k=20)
    assert [h.product_id for h in hits] == _numpy_nearest(images, vectors, vectors[5], hats, 20)  # all 8, in order
    expected_scores = sorted((float(vectors[n] @ vectors[5]) for n, image in enumerate(images) if hats(image)), reverse=True)
    assert [h.score for h in hits] == pytest.approx(expected_scores, abs=2e-3)  # halfvec storage


def test_the_products_are_counted_once_per_filter_while_the_shelves_last(catalogue, settings):
    _, vectors = catalogue
    settings.VISUALSEARCH_SHELVES_TTL = 60
    filters = ProductFilters(category="hats")
    _, _, first = _search(vectors[0], filters)
    _, _, second = _search(vectors[1], filters)
    counts = lambda queries: sum("COUNT(" in q["sql"].upper() for q in queries)  # noqa: E731
    assert counts(first) == 1 and counts(second) == 0


@pytest.mark.parametrize(
    ("products", "most"),
    [(-1, 1000), (0, 1000), (3_000, 1000), (100_000, 3162), (1_000_000, 10_000), (50_000_000, 70_710)],
)
def test_the_exact_limit_grows_with_the_square_root_of_the_catalogue(settings, products, most):
    # -1: never analysed. From PostgreSQL's row estimate, read with the headroom's.
    settings.VISUALSEARCH_EXACT_SEARCH_MAX_PRODUCTS = None
    selectors.images_per_product_forget()
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'shop_product'")
        (saved,) = cursor.fetchone()
        cursor.execute("UPDATE pg_class SET reltuples = %s WHERE relname = 'shop_product'", [products])
    try:
        assert selectors.exact_search_max_products() == most
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE pg_class SET reltuples = %s WHERE relname = 'shop_product'", [saved])
        selectors.images_per_product_forget()
