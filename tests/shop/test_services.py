from decimal import Decimal

import pytest

from shop.images import ImageRejected, image_check
from shop.models import Category, Product, ProductImage
from shop.services import (
    ProductWrite,
    category_get_or_create_path,
    merchant_get_or_create,
    product_image_add,
    product_upsert,
    products_upsert_bulk,
)
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


def _fields(category, **changes):
    return {
        "title": "Blue Tee", "description": "", "price": Decimal("499"), "currency": "INR", "gender": "men",
        "colour": "Blue", "category_id": category.pk, "attributes": {"season": "Summer"}, **changes,
    }  # fmt: skip


def test_bulk_upsert_writes_what_the_one_at_a_time_services_write():
    category = category_get_or_create_path(names=["Apparel", "Topwear", "Tshirts"])
    one, many = merchant_get_or_create(name="One"), merchant_get_or_create(name="Many")
    # Another merchant already holds the slug "red-tee-2": both paths must move aside the same way.
    ProductFactory(slug="red-tee-2", external_id="elsewhere")
    images = [image_check(make_image_bytes(pattern=n)) for n in (1, 2, 3)]
    rows = [("1", _fields(category), images[0]), ("2", _fields(category, title="Red Tee"), images[1]), ("3", _fields(category, title="Cap"), None)]
    for external_id, fields, image in rows:
        values = {name: value for name, value in fields.items() if name != "category_id"}
        product, _, _ = product_upsert(merchant=one, external_id=external_id, category=category, **values)
        if image is not None:
            product_image_add(product=product, image=image, announce=False)

    written = products_upsert_bulk(merchant=many, writes=[ProductWrite(external_id=e, fields=f, image=i) for e, f, i in rows])

    assert [(w.created, w.changed, w.image_added) for w in written] == [(True, False, True), (True, False, True), (True, False, False)]

    def state(merchant):
        return [
            (p.external_id, p.slug.removesuffix(f"-{merchant.slug}"), p.title, p.price, p.colour, p.category_id, p.attributes,
             [(i.position, i.sha256, i.image.name, i.width, i.height, i.embedding_dirty) for i in p.images.all()])
            for p in Product.objects.filter(merchant=merchant).order_by("external_id").prefetch_related("images")
        ]

    assert state(many) == state(one)
    # "One" came first: "Many" finds both its slugs taken by another merchant, as product_upsert would.
    assert sorted(Product.objects.filter(merchant=one).values_list("slug", flat=True)) == ["blue-tee-1", "cap-3", "red-tee-2-one"]
    assert sorted(Product.objects.filter(merchant=many).values_list("slug", flat=True)) == ["blue-tee-1-many", "cap-3-many", "red-tee-2-many"]


def test_bulk_upsert_updates_what_changed_and_appends_new_image_bytes():
    category = category_get_or_create_path(names=["Apparel", "Topwear", "Tshirts"])
    merchant = merchant_get_or_create(name="Myntra")
    first, second = image_check(make_image_bytes(pattern=1)), image_check(make_image_bytes(pattern=2))
    products_upsert_bulk(merchant=merchant, writes=[ProductWrite("1", _fields(category), first), ProductWrite("2", _fields(category), first)])
    created_at = Product.objects.get(external_id="1").updated_at

    written = products_upsert_bulk(
        merchant=merchant,
        writes=[ProductWrite("1", _fields(category, price=Decimal("599")), first), ProductWrite("2", _fields(category), second)],
    )

    assert [(w.created, w.changed, w.image_added) for w in written] == [(False, True, False), (False, False, True)]
    changed = Product.objects.get(external_id="1")
    assert changed.price == Decimal("599") and changed.updated_at > created_at
    assert [(i.position, i.sha256) for i in Product.objects.get(external_id="2").images.all()] == [(0, first.sha256), (1, second.sha256)]
    assert Product.objects.count() == 2 and ProductImage.objects.count() == 3


def test_bulk_upsert_takes_the_same_queries_for_two_rows_or_twenty(django_assert_num_queries):
    category = category_get_or_create_path(names=["Apparel", "Topwear", "Tshirts"])
    merchant = merchant_get_or_create(name="Myntra")
    image = image_check(make_image_bytes(pattern=1))
    # SELECT the merchant's rows, the slugs taken, INSERT products, SELECT their images, INSERT images (+ savepoint).
    for size in (2, 20):
        writes = [ProductWrite(f"{size}-{n}", _fields(category, title=f"Tee {n}"), image) for n in range(size)]
        with django_assert_num_queries(7):
            products_upsert_bulk(merchant=merchant, writes=writes)


def test_bulk_upsert_refuses_an_external_id_twice():
    category = category_get_or_create_path(names=["Apparel"])
    with pytest.raises(ValueError, match="distinct external ids"):
        products_upsert_bulk(
            merchant=merchant_get_or_create(name="Myntra"),
            writes=[ProductWrite("1", _fields(category)), ProductWrite("1", _fields(category))],
        )
