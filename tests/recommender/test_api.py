"""GET /api/products/{id}/similar."""

from __future__ import annotations

import pytest

from shop.models import Product
from tests.visualsearch.test_selectors import CATALOGUE, catalogue, shared_catalogue  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

TSHIRTS = {key for key, spec in CATALOGUE.items() if spec[0] == "tshirts"}
# The product (no images: the hot path skips them), the active model (read on every call
# here: the test settings cache it for 0 s; 2 s in production), its vector, its confirmed
# duplicates, the category subtree (same_category), the search (BEGIN, settings + query,
# COMMIT) and the matches with their images: 11 at most, whatever k is. Growing with k would
# be an N+1.
MAX_QUERIES = 11


def url(product_id: int | str) -> str:
    return f"/api/products/{product_id}/similar"




def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_similar_products_leave_out_the_product_and_hidden_ones(client, catalogue):
    p = catalogue.products
    Product.objects.filter(id=p["navy_tee"].id).update(status=Product.Status.HIDDEN)
    response = client.get(url(p["red_tee"].id), {"k": 20})
    found = ids(response)
    assert set(found) == {p[key].id for key in CATALOGUE} - {p["red_tee"].id, p["navy_tee"].id}
    first = response.json()["results"][0]
    assert set(first) == {"id", "title", "price", "currency", "image_url", "url", "score"}
    assert first["url"].startswith("http://testserver/products/") and first["image_url"].startswith("http://testserver/media/")
    scores = [row["score"] for row in response.json()["results"]]
    assert scores == sorted(scores, reverse=True)


def test_k_defaults_to_twelve_and_is_respected(client, catalogue):
    red = catalogue.products["red_tee"].id
    assert len(ids(client.get(url(red)))) == len(CATALOGUE) - 1  # 9 < 12
    assert len(ids(client.get(url(red), {"k": 2}))) == 2


def test_same_category(client, catalogue):
    p = catalogue.products
    found = ids(client.get(url(p["red_tee"].id), {"same_category": "true", "k": 20}))
    assert set(found) == {p[key].id for key in TSHIRTS - {"red_tee"}}
    everything = ids(client.get(url(p["red_tee"].id), {"same_category": "false", "k": 20}))
    assert len(everything) == len(CATALOGUE) - 1


@pytest.mark.parametrize(
    ("params", "key"),
    [({"k": 0}, "k"), ({"k": 101}, "k"), ({"k": "ten"}, "k"), ({"same_category": "perhaps"}, "same_category")],
)
def test_bad_parameters_are_400(client, catalogue, params, key):
    response = client.get(url(catalogue.products["red_tee"].id), params)
    assert response.status_code == 400
    assert key in response.json()


def test_unknown_and_hidden_products_are_404_json(client, catalogue):
    hidden = catalogue.products["pink_shirt"]
    Product.objects.filter(id=hidden.id).update(status=Product.Status.HIDDEN)
    for product_id in (987654321, hidden.id, 10**20):
        response = client.get(url(product_id))
        assert response.status_code == 404, product_id
        assert response.json() == {"detail": "No such product."}


def test_a_product_not_embedded_yet_has_no_similar_products(client, catalogue):
    from tests.factories import ProductFactory, ProductImageFactory

    fresh = ProductFactory(category=catalogue.categories["shirts"])
    ProductImageFactory(product=fresh, colour=(10, 10, 10))
    assert ids(client.get(url(fresh.id))) == []


@pytest.mark.parametrize("params", [{"k": 2}, {"k": 9}, {"k": 9, "same_category": "true"}])
def test_query_count_does_not_grow_with_k(client, catalogue, django_assert_max_num_queries, params):
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(url(catalogue.products["green_shirt"].id), params)
