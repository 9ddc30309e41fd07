"""Personal strips and the similar strip in a real browser.

* The issue's session on real catalogue photos (../shared/data): women's flats, then a polo
  shirt, then a messenger bag; the home page then shows "Recently viewed" and "Recommended
  for you" above the fold, the latter with all three interests in it (the mean-vector
  recommender showed only tops and kurtas).
* The phone layout (390x844): every strip is one row that scrolls sideways, snapping cards.

Uses the browser, page and screenshots fixtures of tests/e2e/conftest.py (system Chromium,
headless, offline: any request leaving the live server is aborted).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from lab.datasets import catalog_read
from shop.models import Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory, category_tree, make_image_bytes
from visualsearch.indexing import images_embed

# Playwright's sync API runs an asyncio loop in this thread; the test body only creates
# fixtures through the ORM, the live server answers in its own thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# (articleType, how many of its photos, a test of the display name): the first ones by id.
# Tops and kurtas are the distractors the old recommender fell into.
REAL_SHOP = [
    ("Flats", 6, lambda name: "Women" in name),
    ("Tshirts", 6, lambda name: "Polo" in name),
    ("Messenger Bag", 7, lambda name: True),
    ("Handbags", 4, lambda name: True),
    ("Heels", 4, lambda name: True),
    ("Kurtas", 10, lambda name: True),
    ("Tops", 10, lambda name: True),
]
# Which interest of the session a product's articleType follows: a flat's neighbours may be
# heels, a messenger bag's handbags; tops and kurtas follow none.
INTERESTS = {"Flats": "shoes", "Heels": "shoes", "Tshirts": "polo", "Messenger Bag": "bag", "Handbags": "bag"}


@pytest.fixture
def real_shop(shared_catalog: Path) -> dict[str, list[Product]]:
    """A small shop of real catalogue photos, categorised as the demo import does, embedded."""
    merchant = MerchantFactory(name="Myntra", slug="myntra")
    category = category_tree()

    items = sorted(catalog_read(shared_catalog), key=lambda item: int(item.id))
    shop: dict[str, list[Product]] = {}
    image_ids = []
    for article_type, count, wanted in REAL_SHOP:
        chosen = [item for item in items if item.article_type == article_type and wanted(item.display_name)][:count]
        assert len(chosen) == count, article_type
        for item in chosen:
            product = ProductFactory(
                title=item.display_name, slug=f"real-{item.id}", merchant=merchant, price=Decimal(999),
                category=category(item.master_category, item.sub_category, item.article_type),
            )
            image_ids.append(ProductImageFactory(product=product, data=item.path.read_bytes()).id)
            shop.setdefault(article_type, []).append(product)
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return shop


@pytest.mark.integration
def test_home_after_flats_a_polo_and_a_bag_shows_all_three_interests(live_server, browser, real_shop, screenshots):
    viewed = [real_shop["Flats"][0], real_shop["Tshirts"][0], real_shop["Messenger Bag"][2]]
    interest_of = {p.title: INTERESTS.get(article_type, "none") for article_type, products in real_shop.items() for p in products}
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.route(lambda url: not url.startswith(("http://localhost", "http://127.0.0.1")), lambda route: route.abort())
    try:
        for product in viewed:
            page.goto(live_server.url + product.get_absolute_url())
            assert page.get_by_role("heading", level=1).inner_text() == product.title
        page.goto(live_server.url + "/", wait_until="networkidle")

        recently = page.locator("#recently-viewed .card__title").all_inner_texts()
        assert recently == [p.title for p in reversed(viewed)]  # the latest first
        titles = page.locator("#recommended .card__title").all_inner_texts()
        assert len(titles) == 12 and not set(titles) & {p.title for p in viewed}
        followed = [interest_of[title] for title in titles]
        assert set(followed[:3]) == {"shoes", "polo", "bag"}, followed  # each interest in the first places
        assert followed.count("none") <= 3, followed  # not the old strip's tops and kurtas
        assert followed[0] == "bag"  # the bag was the last thing viewed

        # Above the fold: both strips start, and the first recommended card shows, in the first screen.
        for selector in ("#recently-viewed", "#recommended", "#recommended .card >> nth=0"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["y"] < DESKTOP["height"], (selector, box)
        assert page.locator("#recommended .card").first.bounding_box()["y"] + 200 < DESKTOP["height"]
        assert page.locator(".hero").bounding_box()["y"] > page.locator("#recommended").bounding_box()["y"]
        page.screenshot(path=str(screenshots / "recommendations_home.png"))
    finally:
        context.close()


@pytest.fixture
def tees() -> list[Product]:
    """Eighteen generated product pictures in two categories, embedded (no shared data needed)."""
    tops = CategoryFactory(name="Tops", slug="tops")
    merchant = MerchantFactory(name="Northwind Apparel")
    products, image_ids = [], []
    for i in range(18):
        product = ProductFactory(title=f"Everyday Tee {i + 1}", slug=f"everyday-tee-{i + 1}", category=tops, merchant=merchant)
        data = make_image_bytes(colour=(14 * i % 256, 90 + 7 * i, 200 - 9 * i), pattern=i % 9 + 1, size=(240, 320))
        image_ids.append(ProductImageFactory(product=product, data=data).id)
        products.append(product)
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return products


STRIP_LAYOUT = """(el) => {
  const style = getComputedStyle(el);
  const tops = [...el.children].map((card) => card.getBoundingClientRect().top);
  return {display: style.display, overflowX: style.overflowX, snap: style.scrollSnapType,
          scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, height: el.getBoundingClientRect().height,
          rows: new Set(tops.map(Math.round)).size, cards: el.children.length,
          snapAlign: getComputedStyle(el.children[0]).scrollSnapAlign};
}"""


def test_on_a_phone_the_strips_are_rows_that_scroll_sideways(live_server, browser, tees, screenshots):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.route(lambda url: not url.startswith(("http://localhost", "http://127.0.0.1")), lambda route: route.abort())
    try:
        for product in tees[:3]:
            page.goto(live_server.url + product.get_absolute_url())
        page.goto(live_server.url + tees[3].get_absolute_url(), wait_until="networkidle")
        strip = page.locator("#similar .product-strip")
        layout = strip.evaluate(STRIP_LAYOUT)
        assert layout["cards"] == 12 and layout["rows"] == 1, layout  # one row, not a 2-column grid
        assert layout["display"] == "flex" and layout["overflowX"] == "auto" and layout["snap"].startswith("x"), layout
        assert layout["snapAlign"].startswith("start") and layout["scrollWidth"] > 3 * layout["clientWidth"], layout
        assert layout["height"] < 500, layout  # a 2-column grid of 12 was about 2,300 px tall
        # It scrolls sideways: a horizontal swipe (wheel) moves it, the page does not move.
        strip.scroll_into_view_if_needed()
        page_y = page.evaluate("window.scrollY")
        box = strip.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(600, 0)
        page.wait_for_function("document.querySelector('#similar .product-strip').scrollLeft > 0")
        assert page.evaluate("window.scrollX") == 0 and page.evaluate("window.scrollY") == page_y
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no page-wide overflow
        page.screenshot(path=str(screenshots / "recommendations_product_phone.png"))

        # The home page's strips are rows too.
        page.goto(live_server.url + "/", wait_until="networkidle")
        for selector in ("#recently-viewed .product-strip", "#recommended .product-strip"):
            layout = page.locator(selector).evaluate(STRIP_LAYOUT)
            assert layout["rows"] == 1 and layout["overflowX"] == "auto", (selector, layout)
        assert page.locator("#recently-viewed").bounding_box()["y"] < PHONE["height"]
        page.screenshot(path=str(screenshots / "recommendations_home_phone.png"))
    finally:
        context.close()
