"""The responses are built by plain functions (fast); the DRF serializers document them in
the OpenAPI schema. Both must say the same thing, field for field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import RequestFactory

from tests.factories import MerchantFactory, ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.selectors import ProductMatch
from visualsearch.serializers import ListingSerializer, ProductMatchSerializer, listing_data, match_data

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
    ):
        assert match_data(match, request=request) == ProductMatchSerializer(match, context={"request": request}).data
    assert listing_data(copy, request=request) == ListingSerializer(copy, context={"request": request}).data
    assert match_data(ProductMatch(product=product, score=0.5, image_id=1), request=None)["url"] == product.get_absolute_url()
