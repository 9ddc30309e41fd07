"""How many index rows a search asks for per product: from the catalogue's images per
product (PostgreSQL's row estimates), so a catalogue of one photo a product does not pay
for three."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ProductFactory, ProductImageFactory
from visualsearch import selectors


@pytest.fixture
def estimated(settings):
    settings.VISUALSEARCH_INDEX_ROWS_PER_PRODUCT = None
    selectors.images_per_product_forget()
    yield
    selectors.images_per_product_forget()


def _analyse():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE shop_product")
        cursor.execute("ANALYZE shop_productimage")


def _limit_asked(vector, k):
    with CaptureQueriesContext(connection) as queries:
        selectors.nearest_hits(vector=vector, k=k)
    searches = [q["sql"] for q in queries.captured_queries if "<=>" in q["sql"]]
    assert len(searches) == 1
    return int(searches[0].rsplit("LIMIT", 1)[1].split()[0])


@pytest.mark.django_db
def test_one_image_a_product_asks_for_a_quarter_more_rows_than_products(estimated):
    for _ in range(8):
        ProductImageFactory(product=ProductFactory())
    _analyse()
    assert selectors.images_per_product_headroom() == pytest.approx(selectors.MIN_HEADROOM)
    assert _limit_asked(np.ones(1280, dtype=np.float32) / np.sqrt(1280), k=44) == 55  # was 132


@pytest.mark.django_db
def test_several_images_a_product_ask_for_more_up_to_the_cap(estimated):
    for _ in range(6):
        product = ProductFactory()
        for position in range(2):
            ProductImageFactory(product=product, position=position)
    _analyse()
    assert selectors.images_per_product_headroom() == pytest.approx(2.5)  # 1.25 x 2 images
    selectors.images_per_product_forget()
    for _ in range(6):
        product = ProductFactory()
        for position in range(5):
            ProductImageFactory(product=product, position=position)
    _analyse()
    assert selectors.images_per_product_headroom() == selectors.IMAGES_PER_PRODUCT_HEADROOM


@pytest.mark.django_db
def test_the_ratio_is_read_once_per_process_until_it_is_forgotten(estimated):
    with CaptureQueriesContext(connection) as queries:
        first = selectors.images_per_product_headroom()
        second = selectors.images_per_product_headroom()
    assert first == second and len(queries.captured_queries) == 1
    selectors.images_per_product_forget()
    with CaptureQueriesContext(connection) as queries:
        selectors.images_per_product_headroom()
    assert len(queries.captured_queries) == 1


def test_tables_never_analysed_ask_for_the_most():
    # reltuples is -1 before the first ANALYZE (PostgreSQL 14+), 0 for an empty table.
    for images, products in ((-1, -1), (0, 0), (100, -1), (None, 10)):
        assert selectors.headroom_from_estimates(images, products) == selectors.IMAGES_PER_PRODUCT_HEADROOM
    assert selectors.headroom_from_estimates(3000, 3000) == selectors.MIN_HEADROOM
