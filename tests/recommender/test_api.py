"""GET /api/products/{id}/similar."""

from __future__ import annotations

import pytest

from shop.models import Product
from tests.factories import MerchantFactory, ProductFactory, ProductImageFactory
from tests.visualsearch.test_selectors import CATALOGUE, catalogue, shared_catalogue  # noqa: F401 (fixtures)
from visualsearch.indexing import images_embed

pytestmark = pytest.mark.django_db

TSHIRTS = {key for key, spec in CATALOGUE.items() if spec[0] == "tshirts"}
SHIRTS = {key for key, spec in CATALOGUE.items() if spec[0] == "shirts"}
# The product (no images: the hot path skips them), the active model (read on every call
# here: the test settings cache it for 0 s; 2 s in production), its vector, its confirmed
# duplicates, the category and its subtree (same_category), how many products it holds
# (which picks the exact search; counted when the statement is compiled, so once a minute in
# production and on every call here, where the shelves are not kept), the search (BEGIN,
# settings + query, COMMIT) and the matches with their images: 12 at most, whatever k is.
# Growing with k would be an N+1.
MAX_QUERIES = 12
# Falling back to the parent category costs the category path and, per level climbed, the
# filter (2) and its count (1), a search (3) and its cards (2): bounded by the tree's depth,
# not by k.
MAX_QUERIES_FALLBACK = MAX_QUERIES + 1 + 8


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
    assert response.json()["category_used"] is None and response.json()["note"] == ""
    first = response.json()["results"][0]
    assert set(first) == {"id", "title", "price", "currency", "image_url", "url", "score", "also_sold_by"}
    assert first["also_sold_by"] == []
    assert first["url"].startswith("http://testserver/products/") and first["image_url"].startswith("http://testserver/media/")
    scores = [row["score"] for row in response.json()["results"]]
    assert scores == sorted(scores, reverse=True)


def test_k_defaults_to_twelve_and_is_respected(client, catalogue):
    red = catalogue.products["red_tee"].id
    assert len(ids(client.get(url(red)))) == len(CATALOGUE) - 1  # 9 < 12
    assert len(ids(client.get(url(red), {"k": 2}))) == 2


def test_same_category(client, catalogue):
    p = catalogue.products
    response = client.get(url(p["red_tee"].id), {"same_category": "true", "k": 2})
    assert set(ids(response)) == {p[key].id for key in TSHIRTS - {"red_tee"}}
    assert response.json()["category_used"] == "apparel-topwear-tshirts" and response.json()["note"] == ""
    everything = ids(client.get(url(p["red_tee"].id), {"same_category": "false", "k": 20}))
    assert len(everything) == len(CATALOGUE) - 1


def test_same_category_falls_back_to_the_parent_and_says_so(client, catalogue):
    p = catalogue.products
    response = client.get(url(p["red_tee"].id), {"same_category": "true", "k": 4})
    found = ids(response)
    assert set(found[:2]) == {p[key].id for key in TSHIRTS - {"red_tee"}}  # the category's own first
    assert set(found[2:]) == {p[key].id for key in SHIRTS}
    body = response.json()
    assert body["category_used"] == "apparel-topwear"
    assert body["note"] == "Fewer than 4 similar products in Tshirts: showing Topwear as well."


def test_listings_of_one_photo_are_one_result_naming_the_others(client, catalogue):
    red = catalogue.products["red_tee"]
    other = ProductFactory(category=catalogue.categories["tshirts"], merchant=MerchantFactory(name="Eastwind"))
    images_embed(image_ids=[ProductImageFactory(product=other, data=catalogue.images["red_tee"]).id])  # red's very photo
    body = client.get(url(catalogue.products["navy_tee"].id), {"k": 20}).json()
    rows = [row for row in body["results"] if row["id"] in {red.id, other.id}]
    assert len(rows) == 1
    (listing,) = rows[0]["also_sold_by"]
    assert {rows[0]["id"], listing["id"]} == {red.id, other.id}
    assert set(listing) == {"id", "title", "merchant", "price", "currency", "url"}
    assert listing["merchant"] == ("Eastwind" if listing["id"] == other.id else red.merchant.name)
    assert listing["url"].startswith("http://testserver/products/")


@pytest.mark.parametrize(
    ("params", "key"),
    [({"k": 0}, "k"), ({"k": 101}, "k"), ({"k": "ten"}, "k"), ({"same_category": "perhaps"}, "same_category"),
     ({"k": ""}, "k"), ({"same_category": ""}, "same_category"),  # empty: not the default (schema fuzzer)
     ({"k": ["2", "9"]}, "k"), ({"same_category": "1"}, "same_category")],  # one value, true or false
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
    fresh = ProductFactory(category=catalogue.categories["shirts"])
    ProductImageFactory(product=fresh, colour=(10, 10, 10))
    assert ids(client.get(url(fresh.id))) == []


@pytest.mark.parametrize("params", [{"k": 2}, {"k": 9}, {"k": 1, "same_category": "true"}])
def test_query_count_does_not_grow_with_k(client, catalogue, django_assert_max_num_queries, params):
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(url(catalogue.products["green_shirt"].id), params)


@pytest.mark.parametrize("k", [3, 30])
def test_the_fallback_query_count_does_not_grow_with_k(client, catalogue, django_assert_max_num_queries, k):
    # red_tee: Tshirts holds 2 others, so 3 or more climb to Topwear; Topwear's 4 suffice at 3.
    bound = MAX_QUERIES_FALLBACK if k == 3 else MAX_QUERIES_FALLBACK + 8  # 30: Apparel too
    with django_assert_max_num_queries(bound):
        response = client.get(url(catalogue.products["red_tee"].id), {"k": k, "same_category": "true"})
    assert response.json()["category_used"] == ("apparel-topwear" if k == 3 else "apparel")
