"""The recommender on the storefront: the similar strip and "Recommended for you"."""

import pytest
from django.urls import reverse

from shop.models import Product
from tests.factories import CategoryFactory, ProductFactory, ProductImageFactory
from visualsearch.indexing import images_embed

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    tops, shoes = CategoryFactory(name="Tops", slug="tops"), CategoryFactory(name="Shoes", slug="shoes")
    products = []
    for i in range(8):
        category = tops if i < 5 else shoes
        product = ProductFactory(category=category, title=f"Item {i}", slug=f"item-{i}")
        ProductImageFactory(product=product, colour=(30 * i, 120, 200 - 20 * i), pattern=i % 4 + 1)
        products.append(product)
    images_embed(image_ids=[p.images.get().id for p in products])
    return products


def _titles(response, context_key):
    return [m.product.title for m in response.context[context_key]]


def test_product_page_shows_similar_items_without_itself_or_hidden_ones(client, catalogue):
    hidden = catalogue[1]
    hidden.status = Product.Status.HIDDEN
    hidden.save()
    response = client.get(catalogue[0].get_absolute_url())
    titles = _titles(response, "similar")
    assert response.status_code == 200
    assert titles and "Item 0" not in titles and "Item 1" not in titles
    assert len(titles) == 6  # every other active product, since k=12 > 6
    assert b"Visually similar" in response.content and b"% match" in response.content


def test_same_category_option_keeps_the_strip_in_the_category(client, catalogue):
    response = client.get(catalogue[0].get_absolute_url() + "?same_category=1")
    assert sorted(_titles(response, "similar")) == ["Item 1", "Item 2", "Item 3", "Item 4"]


def test_product_page_without_embedding_says_so(client):
    product = ProductFactory()
    ProductImageFactory(product=product)
    response = client.get(product.get_absolute_url())
    assert response.context["similar"] == []
    assert b"No visually similar products yet" in response.content


def test_home_recommends_from_recent_views_and_leaves_out_what_was_seen(client, catalogue):
    assert client.get(reverse("storefront:home")).context["recommended"] == []
    for product in catalogue[:2]:
        client.get(product.get_absolute_url())
    response = client.get(reverse("storefront:home"))
    titles = _titles(response, "recommended")
    assert titles and not {"Item 0", "Item 1"} & set(titles)
    assert b"Recommended for you" in response.content


def test_product_page_query_count_is_bounded(client, catalogue, django_assert_max_num_queries):
    client.get(catalogue[0].get_absolute_url())  # session row created
    with django_assert_max_num_queries(15):  # 14 before the model registry: + the active model (0 s cache in tests)
        client.get(catalogue[2].get_absolute_url())
