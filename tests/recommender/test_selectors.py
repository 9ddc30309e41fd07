"""Similar and recommended products, over a small catalogue embedded with the real model."""

from __future__ import annotations

import pytest

from recommender.selectors import product_similar, products_recommended
from shop.models import Product
from tests.factories import ProductFactory, ProductImageFactory
from tests.visualsearch.test_selectors import CATALOGUE, keys_of
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

TSHIRTS = {key for key, spec in CATALOGUE.items() if spec[0] == "tshirts"}




def test_similar_leaves_out_the_product_itself_and_hidden_products(catalogue):
    Product.objects.filter(id=catalogue.products["purple_sneaker"].id).update(status=Product.Status.HIDDEN)
    matches = product_similar(product=catalogue.products["red_tee"], k=20)
    found = keys_of(matches, catalogue)
    assert "red_tee" not in found and "purple_sneaker" not in found
    assert set(found) == set(CATALOGUE) - {"red_tee", "purple_sneaker"}
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert len(product_similar(product=catalogue.products["red_tee"], k=3)) == 3


def test_similar_in_the_same_category(catalogue):
    matches = product_similar(product=catalogue.products["red_tee"], k=20, same_category=True)
    assert set(keys_of(matches, catalogue)) == TSHIRTS - {"red_tee"}


def test_similar_is_empty_until_the_product_is_embedded(catalogue):
    fresh = ProductFactory(category=catalogue.categories["tshirts"])
    ProductImageFactory(product=fresh, colour=(90, 90, 90))  # not embedded yet
    assert product_similar(product=fresh) == []


def test_recommended_leaves_out_what_was_viewed(catalogue):
    viewed = [catalogue.products[key].id for key in ("red_tee", "navy_tee", "green_shirt")]
    matches = products_recommended(viewed_ids=viewed, k=20)
    found = {m.product.id for m in matches}
    assert found and not found & set(viewed)
    assert len(found) == len(CATALOGUE) - len(viewed)


def test_recommended_after_one_view_is_that_products_similar_list(catalogue):
    shirt = catalogue.products["green_shirt"]
    recommended = products_recommended(viewed_ids=[shirt.id], k=5)
    assert [m.product.id for m in recommended] == [m.product.id for m in product_similar(product=shirt, k=5)]


def test_recommended_without_views_or_vectors_is_empty(catalogue):
    assert products_recommended(viewed_ids=[]) == []
    assert products_recommended(viewed_ids=[987654]) == []
