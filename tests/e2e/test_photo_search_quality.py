"""The shipped model, as a shopper meets it: a real consumer photo of a dress, uploaded whole
with no filters, brings dresses first, and the page says what it thinks the photo shows.

The catalogue is a slice of the real one (../shared/data): dresses among T-shirts, tops,
kurtas, shirts and jeans, which a dress photo could be confused with.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from lab.datasets import catalog_read
from shop.models import Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory
from visualsearch.embedding import DEFAULT_MODEL
from visualsearch.indexing import images_embed

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A blue dress laid on a bed (CC0 consumer photo).
DRESS_PHOTO = "images/029f9205-bc0a-4083-b13d-581bb8cfed9b.jpg"
SLICE = {"Dresses": 12, "Tshirts": 10, "Tops": 10, "Kurtas": 8, "Shirts": 6, "Jeans": 6}


@pytest.fixture
def catalogue(shared_catalog: Path, settings) -> dict[str, list[Product]]:
    settings.VISUALSEARCH_MODEL = DEFAULT_MODEL
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    merchant = MerchantFactory(name="Myntra", slug="myntra")
    items = catalog_read(shared_catalog)
    by_type: dict[str, list[Product]] = {}
    image_ids = []
    for article_type, n in SLICE.items():
        category = CategoryFactory(name=article_type, slug=f"apparel-{article_type.lower()}", parent=apparel)
        for item in [i for i in items if i.article_type == article_type][:n]:
            product = ProductFactory(
                title=item.display_name or f"{article_type} {item.id}", slug=f"real-{item.id}", category=category,
                merchant=merchant, price=Decimal("999"),
            )
            image_ids.append(ProductImageFactory(product=product, data=item.path.read_bytes()).id)
            by_type.setdefault(article_type, []).append(product)
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return by_type


def test_a_consumer_dress_photo_brings_dresses_first(live_server, page, catalogue, shared_consumer_photos, screenshots):
    page.goto(live_server.url + "/shop-the-look/")
    page.set_input_files("input[name=image]", str(shared_consumer_photos / DRESS_PHOTO))
    page.locator("[data-photo]").wait_for(state="visible")
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar pieces").click()
    assert "Dresses" in page.locator(".stl-guess").inner_text()  # "Looks like: Dresses"
    dresses = {p.title for p in catalogue["Dresses"]}
    titles = page.locator(".stl-card .card__title").all_inner_texts()
    assert titles and all(title in dresses for title in titles[:4]), titles[:8]
    page.screenshot(path=str(screenshots / "shop_the_look_dress.png"), full_page=True)
    # "Any category" widens the search to the whole catalogue in one click.
    page.get_by_role("link", name="Any category").click()
    page.wait_for_function("document.querySelector('[data-results]').getAttribute('aria-busy') === 'false'")
    page.wait_for_function("location.search.includes('auto=0')")
    assert page.locator(".stl-card").count() > 4
