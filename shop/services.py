"""Writes to the catalogue. Views, commands and tasks call these; they never save models directly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
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


def _slug_base(*, title: str, external_id: str) -> str:
    return f"{slugify(title)[:180]}-{slugify(external_id)}".strip("-")


def _merchant_slug(base: str, merchant: Merchant, *, taken: bool) -> str:
    """``base``, or ``base`` with the merchant's slug when another merchant holds it (``taken``)."""
    return f"{base}-{merchant.slug}"[:255] if taken else base


def _product_slug(*, title: str, merchant: Merchant, external_id: str) -> str:
    base = _slug_base(title=title, external_id=external_id)
    return _merchant_slug(base, merchant, taken=Product.objects.filter(slug=base).exclude(merchant=merchant).exists())


def _changed_fields(product: Product, fields: dict[str, Any]) -> list[str]:
    return [name for name, value in fields.items() if getattr(product, name) != value]


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
    changed = _changed_fields(product, fields)
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
    row = _image_row(product=product, image=image, position=position)
    row.save()
    if announce:
        product_images_changed.send(sender=ProductImage, image_ids=[row.id])
    return row, True


def _image_row(*, product: Product, image: CheckedImage, position: int) -> ProductImage:
    """An unsaved image row for ``product`` whose file is stored (or shared) already."""
    row = ProductImage(
        product=product, position=position, sha256=image.sha256, width=image.width, height=image.height
    )
    path = product_image_path(row, f"upload.{image.extension}")
    if row.image.storage.exists(path):
        # Content-addressed: the same bytes listed under another product share the file.
        row.image.name = path
    else:
        row.image.save(path, ContentFile(image.data), save=False)
    return row


@dataclass(frozen=True)
class ProductWrite:
    """One product of a bulk write: ``product_upsert``'s fields (the category as
    ``category_id``) and, optionally, checked image bytes to attach."""

    external_id: str
    fields: dict[str, Any]  # title, description, price, currency, gender, colour, category_id, attributes
    image: CheckedImage | None = None


@dataclass(frozen=True)
class ProductWritten:
    product: Product
    created: bool
    changed: bool
    image_added: bool


@transaction.atomic
def products_upsert_bulk(*, merchant: Merchant, writes: Sequence[ProductWrite]) -> list[ProductWritten]:
    """``product_upsert`` then ``product_image_add`` (not announced) for many products of one
    merchant, in one transaction and a handful of queries whatever their number: the
    merchant's rows and their images are read once, new products and images are inserted
    in one statement each, changed products updated in one. Same outcome, row for row, as
    the one-at-a-time services (same slugs, image positions and shared files).

    The external ids must be distinct. A row that breaks a constraint raises the database's
    error and nothing is written: a bulk import then writes that batch one row at a time,
    so that only the bad row is lost (``shop.importers``).
    """
    external_ids = [write.external_id for write in writes]
    if len(set(external_ids)) != len(external_ids):
        raise ValueError("products_upsert_bulk needs distinct external ids.")
    existing = {
        product.external_id: product
        for product in Product.objects.select_for_update().filter(merchant=merchant, external_id__in=external_ids)
    }
    new = [write for write in writes if write.external_id not in existing]
    bases = {write.external_id: _slug_base(title=write.fields["title"], external_id=write.external_id) for write in new}
    taken = set(Product.objects.filter(slug__in=bases.values()).exclude(merchant=merchant).values_list("slug", flat=True))
    created = [
        Product(
            merchant=merchant,
            external_id=write.external_id,
            slug=_merchant_slug(bases[write.external_id], merchant, taken=bases[write.external_id] in taken),
            **write.fields,
        )
        for write in new
    ]
    Product.objects.bulk_create(created)
    changed: dict[str, list[str]] = {}
    now = timezone.now()
    for write in writes:
        product = existing.get(write.external_id)
        if product is not None and (names := _changed_fields(product, write.fields)):
            changed[write.external_id] = names
            for name in names:
                setattr(product, name, write.fields[name])
            product.updated_at = now
    if changed:
        names = sorted({name for fields in changed.values() for name in fields} | {"updated_at"})
        Product.objects.bulk_update([existing[external_id] for external_id in changed], names)

    products = {**existing, **{product.external_id: product for product in created}}
    with_image = [write for write in writes if write.image is not None]
    attached = set(
        ProductImage.objects.filter(product__in=[products[w.external_id] for w in with_image]).values_list("product_id", "sha256")
    )
    count = Counter(product_id for product_id, _ in attached)
    rows, added = [], set()
    for write in with_image:
        product = products[write.external_id]
        if (product.pk, write.image.sha256) in attached:
            continue
        rows.append(_image_row(product=product, image=write.image, position=count[product.pk]))
        count[product.pk] += 1
        attached.add((product.pk, write.image.sha256))
        added.add(write.external_id)
    ProductImage.objects.bulk_create(rows)
    return [
        ProductWritten(
            product=products[write.external_id],
            created=write.external_id not in existing,
            changed=write.external_id in changed,
            image_added=write.external_id in added,
        )
        for write in writes
    ]


def product_set_status(*, product: Product, status: str) -> Product:
    if status not in Product.Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    if product.status != status:
        product.status = status
        product.save(update_fields=["status", "updated_at"])
    return product
