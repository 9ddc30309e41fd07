"""The API docs page (Swagger UI from drf-spectacular-sidecar) in a real browser: "Try it
out" works at the first click, with only what a person would give it (a photo, a product
id): the request examples must not pre-fill values the API refuses."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest

from shop.models import Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.indexing import images_embed

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

COLOURS = [(196, 40, 48), (28, 40, 92), (96, 110, 52), (235, 235, 235), (240, 160, 30), (90, 60, 40)]


@pytest.fixture
def catalogue() -> list[Product]:
    tshirts = CategoryFactory(name="Tshirts", slug="apparel-tshirts", parent=CategoryFactory(name="Apparel", slug="apparel"))
    merchant = MerchantFactory(name="Northwind Apparel", slug="northwind-apparel")
    products, image_ids = [], []
    for i, colour in enumerate(COLOURS):
        product = ProductFactory(title=f"Everyday Tee {i + 1}", slug=f"everyday-tee-{i + 1}", category=tshirts,
                                 price=Decimal(499 + 100 * i), merchant=merchant)
        data = make_image_bytes(colour=colour, pattern=i % 5 + 1, size=(240, 320))
        image_ids.append(ProductImageFactory(product=product, data=data).id)
        products.append(product)
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return products


def _collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def _open_operation(page, operation_id: str):
    operation = page.locator(f"[id^='operations-'][id$='-{operation_id}']")
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    return operation


def _response(operation) -> tuple[int, dict]:
    """The status and JSON body Swagger UI shows for the request it just sent."""
    live = operation.locator(".live-responses-table .response").first
    live.wait_for(state="visible", timeout=60_000)
    status = int(live.locator(".response-col_status").inner_text().strip())
    body = live.locator(".response-col_description pre.microlight, .response-col_description .highlight-code pre").first
    return status, json.loads(body.inner_text())


def test_try_it_out_searches_an_uploaded_photo_at_the_first_click(live_server, page, catalogue, tmp_path):
    errors = _collect_errors(page)
    photo = tmp_path / "tee.jpg"
    photo.write_bytes(make_image_bytes(colour=COLOURS[1], pattern=2, size=(300, 400)))
    page.goto(live_server.url + "/api/docs/")
    operation = _open_operation(page, "search_by_image")
    operation.locator("input[type=file]").set_input_files(str(photo))
    operation.locator("button.execute").click()
    status, body = _response(operation)
    assert status == 200, body
    assert body["items"] and body["items"][0]["results"], body
    titles = {result["title"] for item in body["items"] for result in item["results"]}
    assert titles <= {p.title for p in catalogue} and titles
    assert "/api/search/image" in operation.locator(".request-url").inner_text()
    assert errors == []


def test_try_it_out_lists_similar_products(live_server, page, catalogue):
    errors = _collect_errors(page)
    product = catalogue[0]
    page.goto(live_server.url + "/api/docs/")
    operation = _open_operation(page, "product_similar")
    operation.locator("tr[data-param-name='product_id'] input").fill(str(product.id))
    operation.locator("button.execute").click()
    status, body = _response(operation)
    assert status == 200, body
    results = body["results"] if isinstance(body, dict) else body
    assert results and product.id not in {r["id"] for r in results}
    assert {r["id"] for r in results} <= {p.id for p in catalogue}
    assert errors == []
