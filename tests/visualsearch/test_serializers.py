"""The responses are built by plain functions (fast); the DRF serializers document them in
the OpenAPI schema. Both must say the same thing, field for field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from rest_framework.exceptions import ValidationError

from shop.models import Product
from shop.selectors import product_cards_by_ids
from tests.factories import MerchantFactory, ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.selectors import ProductMatch
from visualsearch.serializers import (
    ListingSerializer,
    StrictBooleanField,
    PhotoMatchSerializer,
    ProductMatchSerializer,
    listing_data,
    match_data,
    photo_match_data,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("price", ["1299.00", "0.50", "15", "99999999.99"])
def test_match_data_is_what_the_documented_serializer_says(price):
    shop = MerchantFactory(name="Northwind", slug="northwind")
    other_shop = MerchantFactory(name="Southwind", slug="southwind")
    product = ProductFactory(price=Decimal(price), merchant=shop)
    ProductImageFactory(product=product, data=make_image_bytes())
    copy = ProductFactory(price=Decimal("10.1"), merchant=other_shop)
    no_image = ProductFactory(merchant=shop)
    request = RequestFactory().get("/api/search/image", HTTP_HOST="localhost")
    for match in (
        ProductMatch(product=product, score=0.987654321, image_id=1, also=(copy,)),
        ProductMatch(product=no_image, score=-0.25, image_id=2),
        ProductMatch(product=product, score=0.61, image_id=1, same_photo=True),
    ):
        assert match_data(match, request=request) == ProductMatchSerializer(match, context={"request": request}).data
        assert photo_match_data(match, request=request) == PhotoMatchSerializer(match, context={"request": request}).data
    assert listing_data(copy, request=request) == ListingSerializer(copy, context={"request": request}).data
    assert match_data(ProductMatch(product=product, score=0.5, image_id=1), request=None)["url"] == product.get_absolute_url()


def test_cards_load_in_two_queries_and_render_without_more(django_assert_num_queries, rf):
    products = [ProductFactory() for _ in range(3)]
    for product in products:
        ProductImageFactory(product=product)
    hidden = ProductFactory(status=Product.Status.HIDDEN)
    wanted = [products[2].id, hidden.id, products[0].id, products[1].id]
    with django_assert_num_queries(2):  # the products with their merchants, their images
        cards = product_cards_by_ids(ids=wanted)
    assert [p.id for p in cards] == [products[2].id, products[0].id, products[1].id]  # in order, hidden left out
    request = rf.get("/")
    with django_assert_num_queries(0):  # what a card, a result row and an "also sold by" line read is loaded
        html = "".join(
            render_to_string("storefront/_product_card.html", {"product": p, "score": 0.9, "also_sold_by": [cards[0]]})
            for p in cards
        )
        rows = [match_data(ProductMatch(product=p, score=0.9, image_id=0, also=(cards[0],)), request=request) for p in cards]
        [listing_data(p, request=request) for p in cards]
    assert all(p.title in html for p in cards) and all(row["image_url"] for row in rows)


@pytest.mark.parametrize(("value", "read"), [("true", True), ("FALSE", False), ("True", True), (True, True), (False, False)])
def test_a_strict_boolean_reads_true_and_false(value, read):
    assert StrictBooleanField().run_validation(value) is read


@pytest.mark.parametrize("value", ["1", "0", 1, 0, "yes", "on", "t", "truthy", None, [], {}])
def test_a_strict_boolean_refuses_anything_else(value):
    with pytest.raises(ValidationError, match="Must be true or false|may not be null"):
        StrictBooleanField().run_validation(value)
