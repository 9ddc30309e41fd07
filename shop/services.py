"""Writes to the catalogue. Views, commands and tasks call these; they never save models directly."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.text import slugify

from shop.images import CheckedImage
from shop.models import Category, Merchant, Product, ProductImage, product_image_path
from shop.signals import product_images_changed


def merchant_get_or_create(*, name: str) -> Merchant:
    name = name.strip()
    merchant, _ = Merchant.objects.get_or_create(name=name, defaults={"slug": slugify(name)[:200] or "merchant"})
    return merchant


def category_get_or_create_path(*, names: Sequence[str]) -> Category:
    """Return the leaf of the path ``names`` (root first), creating missing nodes."""
    parent: Category | None = None
    path: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        path.append(name)
        node = Category.objects.filter(parent=parent, name=name).first()
        if node is None:
            node = Category.objects.create(parent=parent, name=name, slug=slugify("-".join(path))[:255])
        parent = node
    if parent is None:
        raise ValueError("A category path needs at least one non-empty name.")
    return parent


def _product_slug(*, title: str, merchant: Merchant, external_id: str) -> str:
    base = f"{slugify(title)[:180]}-{slugify(external_id)}".strip("-")
    if Product.objects.filter(slug=base).exclude(merchant=merchant).exists():
        base = f"{base}-{merchant.slug}"[:255]
    return base


@transaction.atomic
def product_upsert(
    *,
    merchant: Merchant,
    external_id: str,
    title: str,
    price: Decimal,
    category: Category,
    currency: str = "INR",
    description: str = "",
    gender: str = "",
    colour: str = "",
    attributes: dict[str, Any] | None = None,
) -> tuple[Product, bool, bool]:
    """Create or update the merchant's product ``external_id``. Returns (product, created, changed)."""
    fields = {
        "title": title,
        "price": Decimal(price),
        "currency": currency,
        "category": category,
        "description": description,
        "gender": gender,
        "colour": colour,
        "attributes": attributes or {},
    }
    product = Product.objects.select_for_update().filter(merchant=merchant, external_id=external_id).first()
    if product is None:
        product = Product.objects.create(
            merchant=merchant,
            external_id=external_id,
            slug=_product_slug(title=title, merchant=merchant, external_id=external_id),
            **fields,
        )
        return product, True, False
    changed = [name for name, value in fields.items() if getattr(product, name) != value]
    if changed:
        for name in changed:
            setattr(product, name, fields[name])
        product.save(update_fields=[*changed, "updated_at"])
    return product, False, bool(changed)


def product_image_add(
    *, product: Product, image: CheckedImage, position: int | None = None, announce: bool = True
) -> tuple[ProductImage, bool]:
    """Attach checked image bytes to ``product``; the same bytes twice give the existing row.

    A new image is born dirty and, with ``announce``, announced with
    ``signals.product_images_changed`` (visual search then queues it for the embedding
    workers once the transaction commits). Bulk imports pass False and leave the dirty
    images to ``embed_catalog`` or the periodic sweep, which batch far better.
    """
    existing = ProductImage.objects.filter(product=product, sha256=image.sha256).first()
    if existing is not None:
        return existing, False
    if position is None:
        position = ProductImage.objects.filter(product=product).count()
    row = ProductImage(
        product=product, position=position, sha256=image.sha256, width=image.width, height=image.height
    )
    path = product_image_path(row, f"upload.{image.extension}")
    if row.image.storage.exists(path):
        # Content-addressed: the same bytes listed under another product share the file.
        row.image.name = path
    else:
        row.image.save(path, ContentFile(image.data), save=False)
    row.save()
    if announce:
        product_images_changed.send(sender=ProductImage, image_ids=[row.id])
    return row, True


def product_set_status(*, product: Product, status: str) -> Product:
    if status not in Product.Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    if product.status != status:
        product.status = status
        product.save(update_fields=["status", "updated_at"])
    return product
