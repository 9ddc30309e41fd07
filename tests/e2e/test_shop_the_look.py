"""Shop the look in a real browser: upload a consumer photo, box the garment, get matches.

Uses the browser, page and screenshots fixtures of tests/e2e/conftest.py (system Chromium,
headless, offline: any request leaving the live server is aborted).
"""

from __future__ import annotations

import base64
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

from shop.models import Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.indexing import images_embed

# Playwright's sync API runs an asyncio loop in this thread; the test body only creates
# fixtures through the ORM, the live server answers in its own thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A white printed T-shirt laid on a red sheet (400x534), from the CC0 consumer photos.
CONSUMER_PHOTO = "images/00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg"
# Real catalogue pictures: (file id, title, category, gender, price).
REAL_PRODUCTS = [
    ("10003", "Nike Women White Training T-shirt", "tshirts", Product.Gender.WOMEN, 1295),
    ("10005", "Nike Men Blue Training T-shirt", "tshirts", Product.Gender.MEN, 1195),
    ("10438", "Flying Machine Men Midrise Blue Jeans", "jeans", Product.Gender.MEN, 2499),
    ("10127", "Rockport Men Espresso Brown Casual Shoes", "shoes", Product.Gender.MEN, 5999),
]
GENERATED_COLOURS = [
    (196, 40, 48), (28, 40, 92), (96, 110, 52), (235, 235, 235), (240, 160, 30), (90, 60, 40),
    (30, 130, 140), (200, 120, 170), (60, 60, 60), (150, 190, 230), (230, 210, 160), (120, 40, 150),
]


@pytest.fixture
def catalogue(shared_catalog: Path) -> list[Product]:
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    categories = {
        "tshirts": CategoryFactory(name="Tshirts", slug="apparel-tshirts", parent=apparel),
        "jeans": CategoryFactory(name="Jeans", slug="apparel-jeans", parent=apparel),
        "shoes": CategoryFactory(name="Shoes", slug="footwear-shoes"),
    }
    merchant = MerchantFactory(name="Northwind Apparel", slug="northwind-apparel")
    products, image_ids = [], []
    for file_id, title, category, gender, price in REAL_PRODUCTS:
        product = ProductFactory(
            title=title, slug=f"real-{file_id}", category=categories[category], gender=gender,
            price=Decimal(price), merchant=merchant,
        )
        data = (shared_catalog / "images" / f"{file_id}.jpg").read_bytes()
        image_ids.append(ProductImageFactory(product=product, data=data).id)
        products.append(product)
    names = list(categories)
    for i, colour in enumerate(GENERATED_COLOURS):
        product = ProductFactory(
            title=f"Everyday Piece {i + 1}", slug=f"everyday-piece-{i + 1}", category=categories[names[i % 3]],
            price=Decimal(499 + 150 * i), merchant=merchant,
        )
        data = make_image_bytes(colour=colour, pattern=i % 9 + 1, size=(240, 320))
        image_ids.append(ProductImageFactory(product=product, data=data).id)
        products.append(product)
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return products


def _load_lazy_images(page) -> None:
    """Scroll through the page so loading="lazy" images are in the full-page screenshot."""
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("[...document.images].every((img) => img.complete)")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of the shot


def _collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def test_upload_box_and_search(live_server, page, catalogue, shared_consumer_photos, screenshots):
    errors = _collect_errors(page)
    page.goto(live_server.url + "/shop-the-look/")
    assert page.get_by_role("heading", level=1).inner_text() == "Shop the look"
    assert page.evaluate("document.querySelector('[data-stl-form]').classList.contains('is-enhanced')")
    assert page.locator(".stl-steps").is_visible()  # how it works, until there are results
    page.screenshot(path=str(screenshots / "shop_the_look_start.png"), full_page=True)

    # Pick the photo: it is previewed in the page before anything is sent.
    page.set_input_files("input[name=image]", str(shared_consumer_photos / CONSUMER_PHOTO))
    photo = page.locator("[data-photo]")
    photo.wait_for(state="visible")
    page.wait_for_function("document.querySelector('[data-photo]').naturalWidth > 0")
    assert page.evaluate("document.querySelector('[data-photo]').naturalWidth") == 400

    # Drag a box over the T-shirt (the middle of the picture) with the mouse.
    bounds = photo.bounding_box()
    start = (bounds["x"] + bounds["width"] * 0.05, bounds["y"] + bounds["height"] * 0.25)
    end = (bounds["x"] + bounds["width"] * 0.95, bounds["y"] + bounds["height"] * 0.92)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    assert page.locator("[data-box]").is_visible()
    assert page.locator("[data-clear-box]").is_visible()
    box = {name: int(page.input_value(f"input[name={name}]")) for name in ("x", "y", "w", "h")}
    # Pixels of the original 400x534 photo, whatever size it is shown at.
    assert box["x"] == pytest.approx(20, abs=3) and box["y"] == pytest.approx(134, abs=3)
    assert box["w"] == pytest.approx(360, abs=4) and box["h"] == pytest.approx(357, abs=4)

    page.get_by_role("combobox", name="Category").select_option("apparel")  # Apparel and below
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar pieces").click()

    cards = page.locator(".stl-card")
    apparel = [p for p in catalogue if p.category.slug.startswith("apparel")]
    assert cards.count() == len(apparel)
    scores = page.locator(".stl-score").all_inner_texts()
    assert all(re.fullmatch(r"-?\d{1,3}% match", s) for s in scores), scores
    values = [int(s.split("%")[0]) for s in scores]
    assert values == sorted(values, reverse=True) and 0 < values[0] <= 100
    assert "Matched to the boxed area" in page.locator(".stl-results__header").inner_text()
    # Product images are served and loaded.
    page.wait_for_load_state("networkidle")
    assert page.evaluate("[...document.querySelectorAll('.stl-card img')].every(i => i.complete && i.naturalWidth > 0)")

    # The photo is shown beside the results with its box, and put back in the form (JS) so
    # the box can be adjusted and the search run again.
    assert page.locator("[data-photo][data-server-preview], [data-photo]").first.is_visible()
    assert page.locator("[data-box]").is_visible()
    assert page.evaluate("document.querySelector('input[name=image]').files.length") == 1
    assert page.input_value("input[name=w]") != ""

    _load_lazy_images(page)
    page.screenshot(path=str(screenshots / "shop_the_look.png"), full_page=True)

    # Search again after clearing the box: the whole photo is used.
    page.get_by_role("button", name="Clear box").click()
    assert page.input_value("input[name=w]") == ""
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar pieces").click()
    assert "Matched to your whole photo" in page.locator(".stl-results__header").inner_text()
    assert page.locator(".stl-card").count() == len(apparel)
    assert errors == []


def test_drop_a_photo_on_the_page(live_server, page, shared_consumer_photos):
    errors = _collect_errors(page)
    page.goto(live_server.url + "/shop-the-look/")
    data = base64.b64encode((shared_consumer_photos / CONSUMER_PHOTO).read_bytes()).decode()
    transfer = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "look.jpg", { type: "image/jpeg" }));
            return transfer;
        }""",
        data,
    )
    page.dispatch_event("[data-dropzone]", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": transfer})
    page.locator("[data-photo]").wait_for(state="visible")
    assert page.evaluate("document.querySelector('input[name=image]').files[0].name") == "look.jpg"
    assert errors == []


def test_phone_layout(live_server, browser, catalogue, shared_consumer_photos, screenshots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.route(lambda url: not url.startswith(("http://localhost", "http://127.0.0.1")), lambda route: route.abort())
    try:
        page.goto(live_server.url + "/shop-the-look/")
        # On a touch screen the camera input is offered beside the picker.
        assert page.locator("label[for=id_camera]").is_visible()
        page.set_input_files("input[name=image]", str(shared_consumer_photos / CONSUMER_PHOTO))
        with page.expect_navigation():
            page.get_by_role("button", name="Find similar pieces").click()
        assert page.locator(".stl-card").count() == len(catalogue)
        assert page.locator("[data-clear-box]").is_hidden()  # no box drawn
        columns = page.evaluate("getComputedStyle(document.querySelector('.stl-grid')).gridTemplateColumns")
        assert len(columns.split()) == 2
        _load_lazy_images(page)
        page.screenshot(path=str(screenshots / "shop_the_look_phone.png"), full_page=True)
    finally:
        context.close()


def test_works_without_javascript(live_server, browser, catalogue, shared_consumer_photos):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    page.route(lambda url: not url.startswith(("http://localhost", "http://127.0.0.1")), lambda route: route.abort())
    try:
        page.goto(live_server.url + "/shop-the-look/")
        page.locator("input[name=image]").wait_for(state="visible")  # the plain file input
        page.set_input_files("input[name=image]", str(shared_consumer_photos / CONSUMER_PHOTO))
        with page.expect_navigation():
            page.get_by_role("button", name="Find similar pieces").click()
        assert page.locator(".stl-card").count() == len(catalogue)
        assert "Matched to your whole photo" in page.locator(".stl-results__header").inner_text()
        assert page.locator("[data-photo]").is_visible()  # the photo is shown back, inline
    finally:
        context.close()
