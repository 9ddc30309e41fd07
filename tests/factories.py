"""Factories for the catalogue. Images are small generated JPEGs, never the shared photos."""

from __future__ import annotations

import io
from decimal import Decimal

import factory
from PIL import Image

from shop.images import image_check
from shop.models import Category, Merchant, Product, ProductImage


def make_image_bytes(*, colour=(200, 30, 30), size=(64, 80), fmt="JPEG", pattern: int = 0) -> bytes:
    """A small image; ``pattern`` draws a distinct shape so images differ beyond colour."""
    img = Image.new("RGB", size, colour)
    if pattern:
        from PIL import ImageDraw

        draw = ImageDraw.Draw(img)
        w, h = size
        for i in range(pattern):
            draw.rectangle([(i * 7) % w, (i * 11) % h, (i * 7) % w + w // 4, (i * 11) % h + h // 5], fill=(i * 40 % 255, 90, 200))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    parent = None


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    merchant = factory.SubFactory(MerchantFactory)
    external_id = factory.Sequence(lambda n: f"SKU{n:05d}")
    title = factory.Sequence(lambda n: f"Cotton T-shirt {n}")
    slug = factory.Sequence(lambda n: f"cotton-t-shirt-{n}")
    description = "Soft cotton."
    price = Decimal("799.00")
    currency = "INR"
    gender = Product.Gender.MEN
    colour = "Red"
    category = factory.SubFactory(CategoryFactory)
    status = Product.Status.ACTIVE


class ProductImageFactory(factory.django.DjangoModelFactory):
    """Stores a generated JPEG through the real service: ``ProductImageFactory(product=p, colour=(r, g, b))``.

    Pass ``data=<bytes>`` to store specific bytes.
    """

    class Meta:
        model = ProductImage

    class Params:
        colour = (200, 30, 30)
        pattern = factory.Sequence(lambda n: n % 9 + 1)

    product = factory.SubFactory(ProductFactory)
    position = None
    data = factory.LazyAttribute(lambda o: make_image_bytes(colour=o.colour, pattern=o.pattern))

    @classmethod
    def _create(cls, model_class, *, product, data, position=None, **kwargs):
        from shop.services import product_image_add

        row, _ = product_image_add(
            product=product, image=image_check(data), position=position, announce=False
        )
        return row


def category_tree():
    """``category("Apparel", "Topwear", "Tshirts")``: creates each level of the path once,
    slugged as the demo import does ("apparel-topwear-tshirts"), and returns the leaf."""
    made: dict[tuple[str, ...], object] = {}

    def category(*path: str):
        parent = None
        for depth in range(1, len(path) + 1):
            key = path[:depth]
            if key not in made:
                slug = "-".join(part.lower().replace(" ", "-") for part in key)
                made[key] = CategoryFactory(name=path[depth - 1], slug=slug, parent=parent)
            parent = made[key]
        return parent

    return category
