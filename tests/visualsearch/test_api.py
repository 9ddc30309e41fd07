"""POST /api/search/image, and the OpenAPI schema of the public API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from shop.models import Product
from tests.factories import make_image_bytes
from tests.visualsearch.test_selectors import IMAGE_SIZE, side_by_side
from tests.visualsearch.test_selectors import catalogue, shared_catalogue  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

URL = "/api/search/image"


def photo(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def search(client, data: bytes | None, **fields):
    """POST a photo; by default the whole photo only, every category (the plain nearest
    neighbours: what the filter, box and k tests are about)."""
    fields = {"detect": "false", "auto_category": "false", **fields}
    payload = {key: value for key, value in fields.items() if value is not None}
    if data is not None:
        payload["image"] = photo(data)
    return client.post(URL, payload)  # multipart/form-data




def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_identical_photo_finds_the_product_first(client, catalogue):
    shirt = catalogue.products["green_shirt"]
    response = search(client, catalogue.images["green_shirt"], k=4)

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 4
    best = results[0]
    assert set(best) == {"id", "title", "price", "currency", "image_url", "url", "score", "also_sold_by", "same_photo"}
    assert best["id"] == shirt.id
    assert best["title"] == shirt.title
    assert best["price"] == "1299.00" and best["currency"] == "INR"
    assert best["url"] == f"http://testserver/products/{shirt.slug}/"
    assert best["image_url"] == "http://testserver" + shirt.primary_image.image.url
    assert isinstance(best["score"], float) and best["score"] > 0.99
    assert best["score"] == round(best["score"], 4)
    scores = [row["score"] for row in results]
    assert scores == sorted(scores, reverse=True)


def test_without_k_up_to_twelve_come_back(client, catalogue):
    assert len(ids(search(client, catalogue.images["red_tee"]))) == len(catalogue.products)  # 10 < 12


def test_the_box_searches_only_that_part_of_the_photo(client, catalogue):
    outfit = side_by_side(catalogue.images["pink_shirt"], catalogue.images["blue_jeans"])
    width, height = IMAGE_SIZE
    right = ids(search(client, outfit, x=width, y=0, w=width, h=height, k=3))
    left = ids(search(client, outfit, x=0, y=0, w=width, h=height, k=3))
    assert right[0] == catalogue.products["blue_jeans"].id
    assert left[0] == catalogue.products["pink_shirt"].id


def test_filters(client, catalogue):
    p = catalogue.products
    cases = [
        ({"category": "apparel-topwear"}, {"red_tee", "navy_tee", "yellow_tee", "green_shirt", "pink_shirt"}),
        ({"category": "footwear-shoes"}, {"white_sneaker", "orange_sneaker", "purple_sneaker"}),
        ({"gender": "men"}, {"red_tee", "green_shirt", "black_jeans", "orange_sneaker"}),
        ({"min_price": "1400", "max_price": "3000"}, {"pink_shirt", "black_jeans", "blue_jeans", "white_sneaker"}),
        ({"merchant": "southwind"}, {"yellow_tee", "green_shirt", "blue_jeans", "orange_sneaker"}),
        ({"merchant": "northwind", "gender": "women", "category": "apparel"}, {"navy_tee", "pink_shirt"}),
    ]
    for params, expected in cases:
        found = ids(search(client, catalogue.images["white_sneaker"], k=20, **params))
        assert set(found) == {p[key].id for key in expected}, params


def test_hidden_products_are_left_out(client, catalogue):
    hidden = catalogue.products["yellow_tee"]
    Product.objects.filter(id=hidden.id).update(status=Product.Status.HIDDEN)
    found = ids(search(client, catalogue.images["yellow_tee"], k=20))
    assert hidden.id not in found and len(found) == len(catalogue.products) - 1


@pytest.mark.parametrize(("k", "status"), [(1, 200), (100, 200), (0, 400), (101, 400), (-3, 400), ("many", 400)])
def test_k_bounds(client, catalogue, k, status):
    response = search(client, catalogue.images["red_tee"], k=k)
    assert response.status_code == status
    if status == 400:
        assert "k" in response.json()
    elif k == 1:
        assert ids(response) == [catalogue.products["red_tee"].id]


def truncated_jpeg() -> bytes:
    data = make_image_bytes(size=(200, 200), pattern=5)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "fields", "key", "message"),
    [
        (None, {}, "image", "No file was submitted."),
        (b"", {}, "image", "The submitted file is empty."),
        (b"just some text, not a picture", {}, "image", "The file is not a readable image."),
        (truncated_jpeg(), {}, "image", "The file is not a readable image."),
        (make_image_bytes(fmt="GIF"), {}, "image", "Unsupported image format GIF"),
        (make_image_bytes(), {"x": 500, "y": 500, "w": 40, "h": 40}, "box", "The box must overlap the photo"),
        (make_image_bytes(), {"x": 10, "y": 10}, "box", "Give all four of x, y, w and h"),
        (make_image_bytes(), {"x": 0, "y": 0, "w": 0, "h": 20}, "w", "greater than or equal to 1"),
        (make_image_bytes(), {"x": "left", "y": 0, "w": 20, "h": 20}, "x", "A valid integer is required."),
        (make_image_bytes(), {"category": "no-such-thing"}, "category", "Unknown category."),
        (make_image_bytes(), {"merchant": "nobody"}, "merchant", "Unknown merchant."),
        (make_image_bytes(), {"gender": "robots"}, "gender", "is not a valid choice"),
        (make_image_bytes(), {"min_price": "-1"}, "min_price", "greater than or equal to 0"),
        (make_image_bytes(), {"min_price": "cheap"}, "min_price", "A valid number is required."),
        (make_image_bytes(), {"min_price": "900", "max_price": "100"}, "max_price", "must not be below min price"),
        # A form's values come as strings, a name possibly twice: one value of the documented type.
        (make_image_bytes(), {"k": ["3", "30"]}, "k", "Send one value, not 2."),
        (make_image_bytes(), {"detect": "1"}, "detect", "Must be true or false."),
        (make_image_bytes(), {"auto_category": "yes"}, "auto_category", "Must be true or false."),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong(client, data, fields, key, message):
    response = search(client, data, **fields)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    errors = response.json()
    assert key in errors, errors
    assert message in " ".join(errors[key])


def test_too_large_a_file_is_refused_without_keeping_it_all(client, settings):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    response = search(client, make_image_bytes(size=(400, 400), pattern=9))
    assert response.status_code == 400
    assert "larger than" in response.json()["image"][0]


def test_the_photo_never_goes_to_a_temporary_file(client, catalogue, settings, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the upload was spilled to a temporary file")

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # Django's default handlers would spill anything bigger
    monkeypatch.setattr(TemporaryFileUploadHandler, "new_file", refuse)
    assert ids(search(client, catalogue.images["red_tee"], k=1)) == [catalogue.products["red_tee"].id]


def test_only_post(client):
    assert client.get(URL).status_code == 405


def test_schema_documents_both_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    search_op = schema["paths"]["/api/search/image"]["post"]
    body = search_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    component = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert component["properties"]["image"]["format"] == "binary"
    assert {"x", "y", "w", "h", "category", "gender", "min_price", "max_price", "merchant", "k"} <= set(component["properties"])
    assert component["properties"]["k"]["maximum"] == 100
    assert {"200", "400"} <= set(search_op["responses"])

    similar = schema["paths"]["/api/products/{product_id}/similar"]["get"]
    assert {p["name"] for p in similar["parameters"]} >= {"product_id", "k", "same_category"}
    assert {"200", "400", "404"} <= set(similar["responses"])
    response_ref = search_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    response_schema = schema["components"]["schemas"][response_ref.rsplit("/", 1)[-1]]
    assert {"search_id", "search_url", "model", "items", "results"} <= set(response_schema["properties"])
    assert {"auto_category", "detect"} <= set(component["properties"])
    # The similar list uses the search's result rows (with also_sold_by) and says which category it used;
    # a photo search's rows add same_photo.
    component = schema["components"]["schemas"][similar["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert {"results", "category_used", "note"} <= set(component["properties"])
    row = schema["components"]["schemas"][component["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[-1]]
    photo_row = schema["components"]["schemas"][response_schema["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert set(photo_row["properties"]) == set(row["properties"]) | {"same_photo"} and "also_sold_by" in row["properties"]


def test_docs_page_is_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    # Swagger UI from the sidecar package, then the script that starts "Try it out" form
    # fields empty (tests/e2e/test_api_docs.py drives it in a browser).
    assert "swagger-ui-bundle.js" in page and "js/api_docs.js" in page
    assert page.index("swagger-ui-bundle.js") < page.index("js/api_docs.js")


def test_prices_may_be_decimals(client, catalogue):
    found = ids(search(client, catalogue.images["red_tee"], min_price="499.00", max_price="499.5"))
    assert found == [catalogue.products["red_tee"].id]
    assert catalogue.products["red_tee"].price == Decimal("499")


def test_the_garments_of_a_photo_are_items_with_their_own_results(client, catalogue):
    outfit = side_by_side(catalogue.images["yellow_tee"], catalogue.images["purple_sneaker"], margin=40)
    response = search(client, outfit, detect=None, auto_category=None, k=3)
    assert response.status_code == 200, response.content
    body = response.json()
    kinds = [item["kind"] for item in body["items"]]
    assert "whole" in kinds and len(kinds) == 3, kinds
    garments = [item for item in body["items"] if item["kind"] != "whole"]
    firsts = {item["results"][0]["id"] for item in garments}
    assert firsts == {catalogue.products["yellow_tee"].id, catalogue.products["purple_sneaker"].id}
    assert body["results"] == body["items"][0]["results"] and body["items"][0]["kind"] != "whole"
    width, height = IMAGE_SIZE
    for item in garments:  # boxes in pixels of the photo as uploaded
        box = item["box"]
        assert 0 <= box["x"] and box["x"] + box["w"] <= 2 * width + 3 * 40 + 1 and box["y"] + box["h"] <= height + 2 * 40 + 1
        assert item["categories"] and 0 < item["categories"][0]["probability"] <= 1
        assert item["category_applied"] in (None, *(c["slug"] for c in item["categories"]), "apparel", "apparel-topwear", "footwear")
        # Every category searched: the one shown first, then the next guesses that filled the page.
        assert item["categories_applied"][:1] == ([item["category_applied"]] if item["category_applied"] else [])
    assert body["search_url"] == f"http://testserver/shop-the-look/{body['search_id']}/"
    assert client.get(body["search_url"]).status_code == 200


def test_an_explicit_category_overrides_the_guess(client, catalogue):
    response = search(client, catalogue.images["white_sneaker"], auto_category=None, category="apparel-topwear", k=20)
    body = response.json()
    found = {row["id"] for row in body["results"]}
    p = catalogue.products
    assert found == {p[k].id for k in ("red_tee", "navy_tee", "yellow_tee", "green_shirt", "pink_shirt")}
    assert body["items"][0]["category_applied"] is None  # the shopper's category, not a guess
    assert body["items"][0]["categories_applied"] == []


def test_a_box_is_one_item(client, catalogue):
    outfit = side_by_side(catalogue.images["pink_shirt"], catalogue.images["blue_jeans"])
    width, height = IMAGE_SIZE
    body = search(client, outfit, detect=None, x=width, y=0, w=width, h=height, k=3).json()
    assert [item["kind"] for item in body["items"]] == ["box"]
    assert body["items"][0]["box"] == {"x": width, "y": 0, "w": width, "h": height}
    assert body["results"][0]["id"] == catalogue.products["blue_jeans"].id


def test_a_form_s_empty_fields_are_not_given(client, catalogue):
    """An HTML form and Swagger UI's "Try it out" post every field, empty ones as ""."""
    empty = {name: "" for name in ("x", "y", "w", "h", "category", "gender", "min_price", "max_price", "merchant", "k")}
    picture = catalogue.images["red_tee"]
    assert ids(search(client, picture, **empty)) == ids(search(client, picture))


def test_a_body_that_is_not_a_form_is_a_documented_415(client):
    response = client.post(URL, data=b'{"k": 3}', content_type="application/json")
    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "application/json" in request.'}
    schema = client.get("/api/schema/?format=json").json()
    assert "415" in schema["paths"]["/api/search/image"]["post"]["responses"]
