"""Shopper's path through the storefront in a real browser: home -> category -> product."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from PIL import Image, ImageDraw

from shop.models import Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEE = [(150, 110), (250, 80), (350, 80), (450, 110), (560, 250), (480, 310), (440, 260), (440, 700), (160, 700), (160, 260), (120, 310), (40, 250)]
SNEAKER = [(60, 470), (90, 380), (250, 360), (360, 450), (520, 480), (560, 540), (540, 580), (70, 580)]


def product_photo(shape, colour, *, back: bool = False) -> bytes:
    """A catalogue-style photo: a garment silhouette on white, like the real feed's pictures."""
    img = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(img)
    draw.polygon(shape, fill=colour, outline=(60, 60, 60))
    if shape is TEE and not back:
        draw.arc((245, 55, 355, 135), 0, 180, fill=(255, 255, 255), width=10)  # the neckline
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture
def catalogue():
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    tshirts = CategoryFactory(name="Tshirts", slug="apparel-tshirts", parent=apparel)
    footwear = CategoryFactory(name="Footwear", slug="footwear")
    shoes = CategoryFactory(name="Casual Shoes", slug="footwear-casual-shoes", parent=footwear)
    merchant = MerchantFactory(name="Northwind Apparel")
    colours = {"Red": (196, 40, 48), "Navy Blue": (28, 40, 92), "Olive": (96, 110, 52), "White": (246, 246, 246)}
    products = {"tshirts": [], "shoes": []}
    for i, colour in enumerate(colours):
        tee = ProductFactory(
            title=f"{colour} Crew Neck T-shirt",
            slug=f"{colour.lower().replace(' ', '-')}-crew-neck-t-shirt",
            category=tshirts,
            merchant=merchant,
            colour=colour,
            gender=Product.Gender.MEN if i % 2 else Product.Gender.WOMEN,
            price=Decimal(599 + 200 * i),
            description="Breathable combed cotton with a relaxed fit.",
            attributes={"season": "Summer", "usage": "Casual", "year": 2024},
        )
        for back in (False, True):  # front (primary) and back views
            ProductImageFactory(product=tee, data=product_photo(TEE, colours[colour], back=back))
        products["tshirts"].append(tee)
        shoe = ProductFactory(
            title=f"{colour} Canvas Sneakers",
            slug=f"{colour.lower().replace(' ', '-')}-canvas-sneakers",
            category=shoes,
            merchant=merchant,
            colour=colour,
            price=Decimal(1999 + 500 * i),
        )
        ProductImageFactory(product=shoe, data=product_photo(SNEAKER, colours[colour]))
        products["shoes"].append(shoe)
    return products


def test_browse_category_and_open_a_product(live_server, page, catalogue, screenshots):
    page.goto(live_server.url + "/", wait_until="networkidle")  # lazy images in view have loaded
    # The stylesheet is served (the live server's static handler) and applied.
    assert page.evaluate("getComputedStyle(document.querySelector('.product-grid')).display") == "grid"
    page.screenshot(path=str(screenshots / "storefront_home.png"), full_page=True)

    # Home -> a category: only its products are listed.
    page.get_by_role("link", name="Tshirts").first.click()
    page.wait_for_url("**/products/?category=apparel-tshirts")
    titles = page.locator(".product-grid .card__title").all_inner_texts()
    assert sorted(titles) == sorted(p.title for p in catalogue["tshirts"])
    assert page.locator(".result-count").inner_text().startswith("4 products")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshots / "storefront_list.png"), full_page=True)

    # The filter form narrows further.
    page.get_by_label("Colour").select_option("Olive")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(lambda url: "colour=Olive" in url)
    assert "min_price" not in page.url  # site.js leaves empty fields out of the query
    assert page.locator(".product-grid .card__title").all_inner_texts() == ["Olive Crew Neck T-shirt"]

    # Product page: title, price and the (loaded) primary image.
    page.goto(live_server.url + "/products/?category=apparel-tshirts")
    page.get_by_role("link", name="Navy Blue Crew Neck T-shirt").click()
    page.wait_for_url("**/products/navy-blue-crew-neck-t-shirt/")
    assert page.get_by_role("heading", level=1).inner_text() == "Navy Blue Crew Neck T-shirt"
    assert page.locator(".product__price").inner_text() == "₹799"
    main_image = page.locator("[data-gallery-main]")
    assert main_image.is_visible()
    assert page.evaluate("document.querySelector('[data-gallery-main]').naturalWidth") > 0  # media is served

    # A thumbnail swaps the main image in place (JS), without leaving the page.
    assert page.locator("[data-gallery-thumb]").count() == 2
    second = page.locator("[data-gallery-thumb]").nth(1)
    second.click()
    assert main_image.get_attribute("src") == second.get_attribute("data-src")
    assert page.url.endswith("?image=1")

    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of the shot
    page.screenshot(path=str(screenshots / "storefront_product.png"), full_page=True)
    assert (screenshots / "storefront_product.png").stat().st_size > 0


def test_phone_layout_has_two_columns(live_server, browser, catalogue, screenshots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/products/", wait_until="networkidle")
        columns = page.evaluate("getComputedStyle(document.querySelector('.product-grid')).gridTemplateColumns")
        assert len(columns.split()) == 2
        # Filters fold away on phones (site.js) and open on demand.
        assert page.evaluate("document.querySelector('details.filters').open") is False
        page.screenshot(path=str(screenshots / "storefront_list_phone.png"), full_page=True)
    finally:
        context.close()
