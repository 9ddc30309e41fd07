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


def _upload(page, path) -> None:
    page.set_input_files("input[name=image]", str(path))
    page.locator("[data-photo]").wait_for(state="visible")
    page.wait_for_function("document.querySelector('[data-photo]').naturalWidth > 0")


def _search(page, live_server, path) -> None:
    """Upload ``path`` on the shop-the-look page and send it; back on the kept search's page."""
    page.goto(live_server.url + "/shop-the-look/")
    _upload(page, path)
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar pieces").click()


def _first_titles(page, n: int = 3) -> list[str]:
    return page.locator(".stl-card .card__title").all_inner_texts()[:n]


def test_upload_box_and_search_then_move_the_box_live(live_server, page, catalogue, shared_consumer_photos, screenshots):
    errors = _collect_errors(page)
    page.goto(live_server.url + "/shop-the-look/")
    assert page.get_by_role("heading", level=1).inner_text() == "Shop the look"
    assert page.evaluate("document.querySelector('[data-stl-form]').classList.contains('is-enhanced')")
    page.screenshot(path=str(screenshots / "shop_the_look_start.png"), full_page=True)

    _upload(page, shared_consumer_photos / CONSUMER_PHOTO)
    assert page.evaluate("document.querySelector('[data-photo]').naturalWidth") == 400
    # Drag a box over the T-shirt (the middle of the picture) with the mouse, before the upload.
    photo = page.locator("[data-photo]")
    bounds = photo.bounding_box()
    page.mouse.move(bounds["x"] + bounds["width"] * 0.05, bounds["y"] + bounds["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(bounds["x"] + bounds["width"] * 0.95, bounds["y"] + bounds["height"] * 0.92, steps=8)
    page.mouse.up()
    box = {name: int(page.input_value(f"input[name={name}]")) for name in ("x", "y", "w", "h")}
    assert box["x"] == pytest.approx(20, abs=3) and box["y"] == pytest.approx(134, abs=3)
    assert box["w"] == pytest.approx(360, abs=4) and box["h"] == pytest.approx(357, abs=4)

    with page.expect_navigation():
        page.get_by_role("button", name="Find similar pieces").click()
    # The search lives at its own URL, with the box.
    assert re.search(r"/shop-the-look/[0-9a-f-]{36}/\?x=\d+&y=\d+&w=\d+&h=\d+", page.url), page.url
    assert page.locator(".stl-card").count() > 0
    assert "Your box" in page.locator(".stl-items").inner_text()
    assert page.locator("[data-box]").is_visible()
    assert page.locator(".stl-guess").is_visible() and "Looks like:" in page.locator(".stl-guess").inner_text()
    _load_lazy_images(page)
    page.screenshot(path=str(screenshots / "shop_the_look.png"), full_page=True)

    # Move the box with the mouse: the results change in place (no navigation), the URL follows.
    page.evaluate("window.__samePage = true")
    before_url, before = page.url, page.locator(".stl-results").inner_html()
    stage_photo = page.locator(".stl-stage__photo")
    b = stage_photo.bounding_box()
    page.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] * 0.6)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] * 0.15, steps=6)
    page.mouse.up()
    page.wait_for_function("(url) => location.href !== url", arg=before_url)
    page.wait_for_function("document.querySelector('[data-results]').getAttribute('aria-busy') === 'false'")
    assert page.evaluate("window.__samePage") is True
    assert page.locator(".stl-results").inner_html() != before
    moved = dict(re.findall(r"[?&](x|y|w|h)=(\d+)", page.url))
    assert int(moved["y"]) < box["y"] * 1280 // 534 + 5  # moved up

    # The keyboard: focus the box, move it with the arrows, resize it with Shift.
    url_before_keys = page.url
    page.locator("[data-box]").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowLeft")
    page.wait_for_function("(url) => location.href !== url", arg=url_before_keys)
    assert page.evaluate("window.__samePage") is True

    # Back from a product comes back to these results (a GET URL: no "resubmit the form?").
    results_url = page.url
    first_title = _first_titles(page, 1)[0]
    with page.expect_navigation():
        page.locator(".stl-card a.card__link").first.click()
    assert "/products/" in page.url
    page.go_back()
    page.wait_for_load_state("load")
    assert page.url == results_url
    assert _first_titles(page, 1)[0] == first_title
    assert errors == []


def test_two_garments_each_get_their_own_results(live_server, page, catalogue, shared_catalog, screenshots, tmp_path):
    """Two product photos laid side by side on a floor: two chips, each searching its garment."""
    from PIL import Image

    tee = Image.open(shared_catalog / "images" / "10003.jpg").convert("RGB").resize((300, 400))
    shoes = Image.open(shared_catalog / "images" / "10127.jpg").convert("RGB").resize((300, 300))
    flat = Image.new("RGB", (760, 520), (196, 178, 150))  # a wooden floor
    flat.paste(tee, (40, 60))
    flat.paste(shoes, (420, 110))
    path = tmp_path / "flat_lay.jpg"
    flat.save(path, quality=90)

    errors = _collect_errors(page)
    _search(page, live_server, path)
    chips = page.locator("a.stl-chip")
    assert chips.count() == 3, page.locator(".stl-items").inner_text()  # the whole photo and two garments
    assert page.locator("a.stl-hotspot").count() == 2
    page.screenshot(path=str(screenshots / "shop_the_look_two_garments.png"), full_page=True)
    firsts = set()
    for n in (1, 2):
        page.evaluate("window.__samePage = true")
        before = page.url
        chips.nth(n).click()
        page.wait_for_function("(url) => location.href !== url", arg=before)
        page.wait_for_function("document.querySelector('[data-results]').getAttribute('aria-busy') === 'false'")
        assert page.evaluate("window.__samePage") is True  # swapped in place
        assert "item=" in page.url
        firsts.add(_first_titles(page, 1)[0])
    assert firsts == {"Nike Women White Training T-shirt", "Rockport Men Espresso Brown Casual Shoes"}
    assert errors == []


def test_a_thumbnail_of_a_listing_finds_that_listing_first(live_server, page, catalogue, shared_catalog, tmp_path):
    """A 60x80 thumbnail of a catalogue photo (the CNN barely knows it): the duplicate
    detector's hash rule names its listing, which leads the results, marked "Same photo"."""
    from PIL import Image

    thumbnail = Image.open(shared_catalog / "images" / "10005.jpg").convert("RGB").resize((60, 80), Image.Resampling.LANCZOS)
    path = tmp_path / "thumbnail.jpg"
    thumbnail.save(path, quality=75)
    errors = _collect_errors(page)
    _search(page, live_server, path)
    first = page.locator(".stl-card").first
    assert first.locator(".card__title").inner_text() == "Nike Men Blue Training T-shirt"
    assert first.locator("[data-same-photo]").inner_text() == "Same photo"
    assert page.locator("[data-same-photo]").count() == 1
    assert errors == []


def test_an_8000_by_8000_phone_photo_is_shrunk_in_the_browser_and_searched(live_server, page, catalogue, shared_catalog, tmp_path):
    from PIL import Image

    big = Image.new("RGB", (8000, 8000), (245, 245, 245))
    big.paste(Image.open(shared_catalog / "images" / "10438.jpg").convert("RGB").resize((5000, 6600)), (1500, 700))
    path = tmp_path / "phone.jpg"
    big.save(path, quality=80)
    assert path.stat().st_size < 20 * 1024 * 1024  # under the byte cap, over the pixel cap

    errors = _collect_errors(page)
    page.goto(live_server.url + "/shop-the-look/")
    page.set_input_files("input[name=image]", str(path))
    page.wait_for_function("document.querySelector('[data-upload-status]').textContent.includes('Shrunk to 2000')", timeout=30000)
    assert page.evaluate("document.querySelector('input[name=image]').files[0].size") < path.stat().st_size
    with page.expect_navigation(timeout=60000):
        page.get_by_role("button", name="Find similar pieces").click()
    assert page.locator(".stl-card").count() > 0
    assert "Jeans" in page.locator(".stl-results").inner_text()
    assert errors == []


def test_a_rate_limited_upload_keeps_the_photo(live_server, page, settings, shared_consumer_photos):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "shop_the_look": "1/min"}}
    _search(page, live_server, shared_consumer_photos / CONSUMER_PHOTO)
    page.goto(live_server.url + "/shop-the-look/")
    _upload(page, shared_consumer_photos / CONSUMER_PHOTO)
    page.get_by_role("button", name="Find similar pieces").click()
    page.wait_for_function("document.querySelector('[data-upload-status]').textContent.includes('search again in')")
    assert "/shop-the-look/" == page.url.split(live_server.url)[-1]  # still the upload page
    assert page.evaluate("document.querySelector('input[name=image]').files.length") == 1  # the photo is kept
    assert page.locator("[data-photo]").is_visible()


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
        assert page.locator("label[for=id_camera]").is_visible()  # a touch screen offers the camera
        page.set_input_files("input[name=image]", str(shared_consumer_photos / CONSUMER_PHOTO))
        page.locator("[data-photo]").wait_for(state="visible")
        with page.expect_navigation():
            page.get_by_role("button", name="Find similar pieces").click()
        assert page.locator(".stl-card").count() > 0
        columns = page.evaluate("getComputedStyle(document.querySelector('.stl-grid')).gridTemplateColumns")
        assert len(columns.split()) == 2
        # The photo is large enough to box with a finger, and headings clear the sticky header.
        photo = page.locator(".stl-stage__photo").bounding_box()
        assert photo["width"] >= 300 and photo["height"] <= 0.72 * 844
        heading = page.locator("#stl-results-title")
        heading.scroll_into_view_if_needed()
        page.evaluate("document.querySelector('#results').scrollIntoView()")
        header_bottom = page.evaluate("document.querySelector('.site-header').getBoundingClientRect().bottom")
        assert page.evaluate("document.querySelector('#stl-results-title').getBoundingClientRect().top") >= header_bottom - 1
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
        assert re.search(r"/shop-the-look/[0-9a-f-]{36}/$", page.url)
        assert page.locator(".stl-card").count() > 0
        assert page.locator(".stl-stage__photo").is_visible()  # the photo is shown back
        # Choose the whole photo (a link), then type a box (a GET form).
        with page.expect_navigation():
            page.locator("a.stl-chip").first.click()
        assert "item=0" in page.url and page.locator(".stl-card").count() > 0
        page.locator("summary").first.click()
        for name, value in (("x", "20"), ("y", "130"), ("w", "360"), ("h", "360")):
            page.fill(f"input[name={name}]", value)
        with page.expect_navigation():
            page.get_by_role("button", name="Update results").click()
        assert "x=20" in page.url and "Your box" in page.locator(".stl-items").inner_text()
    finally:
        context.close()
