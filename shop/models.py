"""The catalogue: merchants sell products, filed under a category tree, shown by images."""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Merchant(TimeStamped):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """A node of the category tree, e.g. Apparel > Topwear > Tshirts.

    The slug is built from the whole path, because the same name occurs at several
    depths in real catalogues (Accessories > Watches > Watches).
    """

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=255, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.PROTECT)
    depth = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["depth", "name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_unique_name_per_parent"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(parent__isnull=True), name="category_unique_root_name"
            ),
        ]

    def __str__(self) -> str:
        return " > ".join(c.name for c in self.ancestors_and_self())

    def save(self, *args, **kwargs) -> None:
        self.depth = self.parent.depth + 1 if self.parent_id else 0
        super().save(*args, **kwargs)

    def ancestors_and_self(self) -> list[Category]:
        chain: list[Category] = []
        node: Category | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))

    def get_absolute_url(self) -> str:
        return reverse("storefront:product_list") + f"?category={self.slug}"


class Product(TimeStamped):
    class Gender(models.TextChoices):
        MEN = "men", "Men"
        WOMEN = "women", "Women"
        BOYS = "boys", "Boys"
        GIRLS = "girls", "Girls"
        UNISEX = "unisex", "Unisex"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        HIDDEN = "hidden", "Hidden"

    merchant = models.ForeignKey(Merchant, related_name="products", on_delete=models.PROTECT)
    # The merchant's own identifier (SKU or feed id); what makes re-imports idempotent.
    external_id = models.CharField(max_length=100)
    title = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="INR")
    gender = models.CharField(max_length=10, choices=Gender.choices, blank=True, db_index=True)
    colour = models.CharField(max_length=50, blank=True, db_index=True)
    category = models.ForeignKey(Category, related_name="products", on_delete=models.PROTECT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "external_id"], name="product_unique_external_id"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_non_negative"),
        ]
        indexes = [
            models.Index(fields=["status", "category", "price"], name="product_listing_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("storefront:product_detail", kwargs={"slug": self.slug})

    @property
    def primary_image(self) -> ProductImage | None:
        # Uses the prefetch cache when the selector prefetched images.
        images = list(self.images.all())
        return images[0] if images else None


ALLOWED_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp"}


def product_image_path(instance: ProductImage, filename: str) -> str:
    # Content-addressed: the name never comes from the uploader, and a re-upload of the
    # same bytes lands on the same path.
    digest = instance.sha256
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    ext = ext if ext in ALLOWED_IMAGE_EXTENSIONS else "jpg"
    return f"products/{digest[:2]}/{digest}.{ext}"


class ProductImage(TimeStamped):
    product = models.ForeignKey(Product, related_name="images", on_delete=models.CASCADE)
    image = models.ImageField(upload_to=product_image_path, max_length=255)
    position = models.PositiveSmallIntegerField(default=0, help_text="0 is the primary image.")
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    alt_text = models.CharField(max_length=255, blank=True)
    # Set when the image is new or its bytes changed; cleared once the active model has
    # embedded it. The periodic sweep embeds whatever is still dirty (e.g. enqueued while
    # the broker was down).
    embedding_dirty = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(embedding_dirty=True), name="productimage_dirty_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["product", "sha256"], name="productimage_unique_bytes_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.product} #{self.position}"
