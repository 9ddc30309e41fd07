"""A merchandiser reviews the duplicate queue in a real browser: confirms one flag by
keyboard, dismisses another with the mouse, and the counts follow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from shop.images import image_check
from shop.models import Product
from shop.services import product_image_add
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory
from tests.visualsearch.duplicates.photos import TEE, TROUSERS, jpeg, photo, relisted_copy
from visualsearch.duplicates.models import DuplicateFlag, DuplicateFlagAction
from visualsearch.indexing import images_embed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def flagged_catalogue():
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    tees = CategoryFactory(name="Tshirts", slug="apparel-tshirts", parent=apparel)
    trousers = CategoryFactory(name="Trousers", slug="apparel-trousers", parent=apparel)
    north, south = MerchantFactory(name="Northwind Apparel"), MerchantFactory(name="Southwind Outlet")
    tee_photo, trouser_photo = photo(shape=TEE, colour=(196, 40, 48), print_seed=3), photo(shape=TROUSERS, colour=(40, 70, 140), print_seed=8)
    listings = [
        ("Red Graphic Crew Neck T-shirt", tees, north, "RT-100", 799, jpeg(tee_photo)),
        ("Red Graphic T-shirt for Men", tees, south, "SW-9001", 749, jpeg(tee_photo)),  # same bytes
        ("Blue Block Print Trousers", trousers, north, "BT-200", 1499, jpeg(trouser_photo)),
        ("Blue Printed Relaxed Trousers", trousers, south, "SW-9002", 1399, jpeg(relisted_copy(trouser_photo), quality=72)),
        ("Olive Utility Shirt", tees, north, "OS-300", 1199, jpeg(photo(shape=TEE, colour=(96, 110, 52), print_seed=21))),
    ]
    ids = []
    for title, category, merchant, sku, price, data in listings:
        product = ProductFactory(title=title, category=category, merchant=merchant, external_id=sku, price=Decimal(price), slug=sku.lower())
        image, _ = product_image_add(product=product, image=image_check(data), announce=False)
        ids.append(image.id)
    images_embed(image_ids=ids)
    user = get_user_model().objects.create_user("merchandiser", password="review-pass-123", is_staff=True)
    return user


def test_merchandiser_confirms_one_flag_and_dismisses_another(live_server, page, flagged_catalogue, screenshots):
    assert DuplicateFlag.objects.filter(status="open").count() == 2

    page.goto(live_server.url + "/review/duplicates/")
    # Not signed in: the admin login, then back to the queue.
    page.wait_for_url("**/admin/login/**")
    page.fill("#id_username", "merchandiser")
    page.fill("#id_password", "review-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/review/duplicates/")
    page.wait_for_load_state("networkidle")

    cards = page.locator(".dup-card")
    assert cards.count() == 2
    assert page.locator('[data-count="open"]').inner_text() == "2"
    first_title = cards.nth(0).locator(".dup-card__title").inner_text()
    assert "Exact copy" in first_title  # highest score first
    assert page.locator(".dup-card").nth(0).get_attribute("class").find("is-current") >= 0
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / "duplicates_review.png"), full_page=True)

    # Keyboard: C confirms the current (first) flag, hiding the newer listing.
    page.keyboard.press("c")
    page.wait_for_selector(".dup-toast:has-text('is hidden')")
    page.wait_for_function("document.querySelectorAll('.dup-card').length === 1")
    assert page.locator('[data-count="confirmed"]').inner_text() == "1"

    # Mouse: "Not a duplicate" on the remaining one.
    page.get_by_role("button", name="Not a duplicate").click()
    page.wait_for_selector(".dup-toast:has-text('Dismissed')")
    page.wait_for_load_state("networkidle")  # the emptied page reloads to its empty state
    page.wait_for_selector(".dup-empty")
    assert page.locator('[data-count="open"]').inner_text() == "0"
    assert page.locator('[data-count="confirmed"]').inner_text() == "1"
    assert page.locator('[data-count="dismissed"]').inner_text() == "1"

    confirmed = DuplicateFlag.objects.get(status="confirmed")
    assert confirmed.kind == "exact" and confirmed.hidden_product.title == "Red Graphic T-shirt for Men"
    assert Product.objects.get(title="Red Graphic T-shirt for Men").status == "hidden"
    assert DuplicateFlag.objects.get(status="dismissed").kind == "near"
    assert set(DuplicateFlagAction.objects.values_list("action", "actor__username")) == {
        ("confirm", "merchandiser"), ("dismiss", "merchandiser")
    }

    # U undoes the last action, then the one before, each with a message after the reload.
    page.keyboard.press("u")
    page.wait_for_selector(".dup-toast:has-text('Undone: #')")
    assert "it was dismissed" in page.locator(".dup-toast").inner_text()
    assert "Press U to undo the action before" in page.locator(".dup-toast").inner_text()
    page.keyboard.press("u")
    page.wait_for_selector(".dup-toast:has-text('both listings are visible')")
    assert DuplicateFlag.objects.filter(status="open").count() == 2
    assert Product.objects.get(title="Red Graphic T-shirt for Men").status == "active"
    page.keyboard.press("u")
    page.wait_for_selector(".dup-toast:has-text('Nothing to undo')")

    # The bulk bar follows the scroll only while something is selected.
    bar = page.locator("#bulk-form")
    assert bar.evaluate("(el) => getComputedStyle(el).position") == "static"
    page.locator("[data-select]").first.check()
    assert bar.evaluate("(el) => getComputedStyle(el).position") == "sticky"
    page.locator("[data-select]").first.uncheck()
    # The activity log is one click from the top of the page.
    page.get_by_role("link", name="Recent activity").click()
    assert page.evaluate("location.hash") == "#activity"
    page.locator(".dup-card").first.focus()
    page.keyboard.press("c")  # confirm the exact copy again
    page.wait_for_selector(".dup-toast:has-text('is hidden')")

    # The confirmed tab shows who did it, with a way back.
    page.get_by_role("link", name="Confirmed").click()
    page.wait_for_selector(".dup-card__resolution")
    assert "merchandiser" in page.locator(".dup-card__resolution").inner_text()
    page.screenshot(path=str(screenshots / "duplicates_review_confirmed.png"), full_page=True)
