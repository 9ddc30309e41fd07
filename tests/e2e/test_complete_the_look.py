""""Complete the look" on real catalogue photos, through the real components, in a browser.

Men's T-shirts photographed on a model wearing jeans, men's T-shirts photographed flat, and
the bottoms and shoes of a small shop (../shared/data), embedded with the shipped model:
embedding announces the products, the (eager) task locates the garments worn in each photo,
and the product pages show the jeans. A flat T-shirt borrows the look of a similar T-shirt
worn by the model. Also the phone layout: each group's products are one sideways row.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from lab.datasets import catalog_read
from recommender.models import ProductLook
from shop.models import Product
from tests.factories import MerchantFactory, ProductFactory, ProductImageFactory, category_tree
from visualsearch.embedding.config import DEFAULT_MODEL
from visualsearch.indexing import images_embed
from visualsearch.selectors import active_model_forget

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Catalogue ids: T-shirts worn with jeans (the jeans show below the hem), and flat T-shirts.
WORN_WITH_JEANS = ["10344", "10426", "10442"]
FLAT = ["10005", "10006"]
# The rest of the shop: (articleType, gender, how many), the first ones by id.
OTHERS = [("Jeans", "Men", 8), ("Trousers", "Men", 4), ("Jeans", "Women", 3), ("Casual Shoes", "Men", 4), ("Tshirts", "Men", 6)]


@pytest.fixture
def worn_shop(shared_catalog: Path, settings) -> dict[str, list[Product]]:
    settings.VISUALSEARCH_MODEL = DEFAULT_MODEL  # the category head names what is worn
    active_model_forget()
    merchant = MerchantFactory(name="Myntra", slug="myntra")
    category = category_tree()

    items = sorted(catalog_read(shared_catalog), key=lambda item: int(item.id))
    by_id = {item.id: item for item in items}
    chosen = {"worn": [by_id[i] for i in WORN_WITH_JEANS], "flat": [by_id[i] for i in FLAT]}
    taken = set(WORN_WITH_JEANS + FLAT)
    for article_type, gender, count in OTHERS:
        picked = [i for i in items if i.article_type == article_type and i.gender == gender and i.id not in taken][:count]
        assert len(picked) == count, article_type
        chosen[f"{gender} {article_type}"] = picked
        taken |= {i.id for i in picked}
    shop: dict[str, list[Product]] = {}
    image_ids = []
    for key, picked in chosen.items():
        for item in picked:
            product = ProductFactory(
                title=item.display_name, slug=f"real-{item.id}", merchant=merchant, price=Decimal(999),
                gender=item.gender.lower(), category=category(item.master_category, item.sub_category, item.article_type),
            )
            image_ids.append(ProductImageFactory(product=product, data=item.path.read_bytes()).id)
            shop.setdefault(key, []).append(product)
    # One batch, as a worker would: the looks are computed after it, with every product in the index.
    assert images_embed(image_ids=image_ids).embedded == len(image_ids)
    return shop


def test_a_tshirt_worn_with_jeans_suggests_mens_bottoms_and_a_flat_one_borrows_it(live_server, browser, worn_shop, screenshots):
    looks = {look.product_id: look for look in ProductLook.objects.all()}
    assert len(looks) == sum(len(products) for products in worn_shop.values())  # every product got one, after embedding
    bottoms = {p.id for key in ("Men Jeans", "Men Trousers") for p in worn_shop[key]}
    for product in worn_shop["worn"]:
        look = looks[product.id]
        assert look.has_look and look.model_name == DEFAULT_MODEL, product.title
        region = look.regions[0]
        assert region["kind"] == "bottom" and region["label"] in {"Jeans", "Trousers"}, region
        suggested = [s[0] for s in region["suggestions"]]
        assert suggested and set(suggested) <= bottoms, (product.title, suggested)  # men's, not the women's jeans
    for product in worn_shop["flat"]:
        assert not looks[product.id].has_look  # nothing else in the photo

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.route(lambda url: not url.startswith(("http://localhost", "http://127.0.0.1")), lambda route: route.abort())
    try:
        worn = worn_shop["worn"][0]
        page.goto(live_server.url + worn.get_absolute_url(), wait_until="networkidle")
        section = page.locator("#complete-the-look")
        assert section.get_by_role("heading", level=2).inner_text() == "Complete the look"
        assert "worn with it in the photo" in section.locator(".section__note").inner_text()
        group = section.locator("[data-look-group='bottom']")
        assert group.locator(".look-group__title").inner_text().strip() in {"Jeans", "Trousers"}
        titles = group.locator(".card__title").all_inner_texts()
        bottom_titles = {p.title for key in ("Men Jeans", "Men Trousers") for p in worn_shop[key]}
        assert titles and set(titles) <= bottom_titles, titles
        # The tile shows the jeans' box of the product's own photo.
        tile = group.locator(".look-group__tile")
        assert tile.evaluate("(el) => getComputedStyle(el).backgroundImage").startswith('url("http')
        page.screenshot(path=str(screenshots / "complete_the_look_worn.png"), full_page=True)

        flat = worn_shop["flat"][0]
        page.goto(live_server.url + flat.get_absolute_url(), wait_until="networkidle")
        section = page.locator("#complete-the-look")
        source = section.locator("[data-look-source]")
        assert source.inner_text() in {p.title for p in worn_shop["worn"]}  # borrowed from a worn T-shirt
        assert set(section.locator(".card__title").all_inner_texts()) <= bottom_titles
        page.screenshot(path=str(screenshots / "complete_the_look_borrowed.png"), full_page=True)
        # Following the card opens the suggested product.
        first = section.locator(".card a").first
        href = first.get_attribute("href")
        first.click()
        page.wait_for_url(live_server.url + href)
    finally:
        context.close()


def test_on_a_phone_each_garments_products_are_one_sideways_row(live_server, browser, worn_shop, screenshots):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.route(lambda url: not url.startswith(("http://localhost", "http://127.0.0.1")), lambda route: route.abort())
    try:
        page.goto(live_server.url + worn_shop["worn"][1].get_absolute_url(), wait_until="networkidle")
        group = page.locator("#complete-the-look .look-group").first
        strip = group.locator(".product-strip")
        layout = strip.evaluate("""(el) => ({display: getComputedStyle(el).display, overflowX: getComputedStyle(el).overflowX,
            rows: new Set([...el.children].map((c) => Math.round(c.getBoundingClientRect().top))).size, cards: el.children.length})""")
        assert layout["display"] == "flex" and layout["overflowX"] == "auto" and layout["rows"] == 1 and layout["cards"] >= 1, layout
        # The tile sits beside the label above the row, not in a column of its own.
        tile, heading = group.locator(".look-group__tile").bounding_box(), group.locator(".look-group__title").bounding_box()
        assert tile["width"] < 100 and strip.bounding_box()["y"] >= heading["y"] + heading["height"] - 1
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing overflows the page
        group.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "complete_the_look_phone.png"))
    finally:
        context.close()
