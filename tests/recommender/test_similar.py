"""Similar items over a small catalogue embedded with the real model (``build_catalogue``):
the category fallback, folding listings of one photo, the query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recommender.selectors import product_similar
from shop.models import Product
from tests.factories import MerchantFactory, ProductFactory, ProductImageFactory, make_image_bytes
from tests.visualsearch.test_selectors import CATALOGUE, keys_of
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch.indexing import images_embed

pytestmark = pytest.mark.django_db

TSHIRTS = {key for key, spec in CATALOGUE.items() if spec[0] == "tshirts"}
SHIRTS = {key for key, spec in CATALOGUE.items() if spec[0] == "shirts"}
JEANS = {key for key, spec in CATALOGUE.items() if spec[0] == "jeans"}


# Similar items -----------------------------------------------------------------------


def test_similar_leaves_out_the_product_itself_and_hidden_products(catalogue):
    Product.objects.filter(id=catalogue.products["purple_sneaker"].id).update(status=Product.Status.HIDDEN)
    similar = product_similar(product=catalogue.products["red_tee"], k=20)
    found = keys_of(similar.matches, catalogue)
    assert "red_tee" not in found and "purple_sneaker" not in found
    assert set(found) == set(CATALOGUE) - {"red_tee", "purple_sneaker"}
    assert [m.score for m in similar.matches] == sorted((m.score for m in similar.matches), reverse=True)
    assert similar.category is None and similar.note == "" and not similar.fell_back
    assert len(product_similar(product=catalogue.products["red_tee"], k=3).matches) == 3


def test_similar_in_the_same_category_when_it_holds_k(catalogue):
    similar = product_similar(product=catalogue.products["red_tee"], k=2, same_category=True)
    assert set(keys_of(similar.matches, catalogue)) == TSHIRTS - {"red_tee"}
    assert similar.category == catalogue.categories["tshirts"] and not similar.fell_back and similar.note == ""


def test_a_small_category_falls_back_to_its_parent_and_says_so(catalogue):
    similar = product_similar(product=catalogue.products["red_tee"], k=4, same_category=True)
    found = keys_of(similar.matches, catalogue)
    # The category's own products first, then the parent's (Topwear: the shirts).
    assert set(found[:2]) == TSHIRTS - {"red_tee"} and set(found[2:]) == SHIRTS
    assert similar.category == catalogue.categories["topwear"] and similar.fell_back
    assert similar.note == "Fewer than 4 similar products in Tshirts: showing Topwear as well."


def test_the_fallback_climbs_until_k_or_the_root(catalogue):
    similar = product_similar(product=catalogue.products["green_shirt"], k=20, same_category=True)
    found = keys_of(similar.matches, catalogue)
    assert found[0] == "pink_shirt"
    assert set(found[1:4]) == TSHIRTS and set(found[4:]) == JEANS  # Shirts, then Topwear, then Apparel
    assert similar.category == catalogue.categories["apparel"]


def test_a_root_category_has_nowhere_to_fall_back_to(catalogue):
    similar = product_similar(product=catalogue.products["white_sneaker"], k=5, same_category=True)
    assert len(similar.matches) == 2  # the other shoes; Footwear holds nothing else
    assert similar.category == catalogue.categories["footwear"] and similar.fell_back


def test_similar_is_empty_until_the_product_is_embedded(catalogue):
    fresh = ProductFactory(category=catalogue.categories["tshirts"])
    ProductImageFactory(product=fresh, colour=(90, 90, 90))  # not embedded yet
    similar = product_similar(product=fresh, same_category=True)
    assert similar.matches == [] and not similar.fell_back


def test_similar_folds_listings_of_the_same_photo_into_one_card(catalogue):
    photo = make_image_bytes(colour=(10, 200, 190), pattern=3, size=(64, 80))
    copies = []
    for name in ("Eastwind", "Westwind", "Northwind"):
        product = ProductFactory(category=catalogue.categories["tshirts"], merchant=MerchantFactory(name=name))
        copies.append(ProductImageFactory(product=product, data=photo))
    images_embed(image_ids=[image.id for image in copies])
    similar = product_similar(product=catalogue.products["red_tee"], k=20)
    copy_ids = {image.product_id for image in copies}
    carded = [m for m in similar.matches if m.product.id in copy_ids]
    assert len(carded) == 1  # one card ...
    assert {p.id for p in carded[0].also} == copy_ids - {carded[0].product.id}  # ... naming the others
    assert {p.merchant.name for p in carded[0].also} <= {"Eastwind", "Westwind", "Northwind"}
    assert len(similar.matches) == len(CATALOGUE) - 1 + 1  # every other product, the copies as one


@pytest.mark.parametrize(("k", "same_category"), [(2, False), (9, False), (2, True)])
def test_similar_query_count_does_not_grow_with_k(catalogue, k, same_category):
    product = Product.objects.select_related("category").get(id=catalogue.products["red_tee"].id)
    with CaptureQueriesContext(connection) as captured:
        product_similar(product=product, k=k, same_category=same_category)
    # the active model (read every time in tests), the precomputed strip (none here; only the
    # default scope has one), vector, confirmed duplicates, the search (savepoint, query,
    # release), the cards (2: the products, their images); the category filter adds the
    # category and its subtree (2) and how many products they hold (1; kept for a minute in
    # production, counted on every call here), and reads no strip.
    assert len(captured) <= (11 if same_category else 9)


def test_the_fallback_costs_one_search_per_level(catalogue):
    product = Product.objects.select_related("category").get(id=catalogue.products["green_shirt"].id)
    with CaptureQueriesContext(connection) as captured:
        product_similar(product=product, k=20, same_category=True)
    # 3 levels (Shirts, Topwear, Apparel) x (filter 2 + count 1 + search 3 + cards 2) + the
    # active model, vector, duplicates, path.
    assert len(captured) <= 3 * 8 + 4
