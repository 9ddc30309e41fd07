from decimal import Decimal

import pytest

from shop.images import ImageRejected, image_check
from shop.models import Category, Product, ProductImage
from shop.services import category_get_or_create_path, merchant_get_or_create, product_image_add, product_upsert
from tests.factories import ProductFactory, ProductImageFactory, make_image_bytes

pytestmark = pytest.mark.django_db


def test_category_path_is_created_once_and_slugs_follow_the_path():
    leaf = category_get_or_create_path(names=["Accessories", "Watches", "Watches"])
    again = category_get_or_create_path(names=["Accessories", "Watches", "Watches"])
    assert leaf == again
    assert leaf.slug == "accessories-watches-watches"
    assert leaf.depth == 2
    assert str(leaf) == "Accessories > Watches > Watches"
    assert Category.objects.count() == 3


def test_product_upsert_is_idempotent_and_reports_changes():
    merchant = merchant_get_or_create(name="Myntra")
    category = category_get_or_create_path(names=["Apparel", "Topwear", "Tshirts"])
    kwargs = dict(merchant=merchant, external_id="1001", title="Blue Tee", price=Decimal("499"), category=category)
    product, created, changed = product_upsert(**kwargs)
    assert (created, changed) == (True, False)
    assert product.slug == "blue-tee-1001"
    _, created, changed = product_upsert(**kwargs)
    assert (created, changed) == (False, False)
    _, created, changed = product_upsert(**{**kwargs, "price": Decimal("599")})
    assert (created, changed) == (False, True)
    assert Product.objects.get().price == Decimal("599")


def test_image_add_stores_content_addressed_file_once():
    product = ProductFactory()
    data = make_image_bytes(pattern=3)
    row, created = product_image_add(product=product, image=image_check(data))
    assert created and row.position == 0
    assert (row.width, row.height) == (64, 80)
    assert row.image.name == f"products/{row.sha256[:2]}/{row.sha256}.jpg"
    again, created = product_image_add(product=product, image=image_check(data))
    assert not created and again.pk == row.pk
    second = ProductImageFactory(product=product)
    assert second.position == 1
    assert ProductImage.objects.filter(product=product).count() == 2


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"<html>not an image</html>", "not a readable image"),
        (make_image_bytes()[:200], "not a readable image"),
        (make_image_bytes(fmt="GIF"), "Unsupported image format GIF"),
    ],
)
def test_image_check_rejects_bad_bytes_with_a_reason(data, message):
    with pytest.raises(ImageRejected, match=message):
        image_check(data)


def test_same_bytes_on_two_products_share_one_stored_file():
    data = make_image_bytes(pattern=5)
    first, _ = product_image_add(product=ProductFactory(), image=image_check(data), announce=False)
    second, created = product_image_add(product=ProductFactory(), image=image_check(data), announce=False)
    assert created and second.pk != first.pk
    assert second.image.name == first.image.name
