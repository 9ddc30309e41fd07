"""Viewing history of signed-in shoppers, kept across sessions and devices.

Anonymous visitors' history lives in their session (``recommender.history``); on login it is
merged into these rows (``recommender.services.history_merge_session``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from shop.models import Product


class ProductView(models.Model):
    """The last time ``user`` opened ``product``'s page: one row per (user, product), its
    time moved forward on every new view. Bounded: ``recommender.services`` keeps each
    user's ``history.MAX_REMEMBERED`` most recent rows and deletes older ones on write."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="product_views", on_delete=models.CASCADE)
    product = models.ForeignKey(Product, related_name="+", on_delete=models.CASCADE)
    viewed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "product"], name="productview_unique_user_product"),
        ]
        indexes = [
            # The read (a user's most recent views) and the prune both walk this index.
            models.Index(fields=["user", "-viewed_at"], name="productview_user_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} viewed {self.product_id} at {self.viewed_at:%Y-%m-%d %H:%M}"


class ProductLook(models.Model):
    """"Complete the look" for one product, precomputed by the workers from the product's own
    photo (``recommender.outfits``): the other garments the photo shows (a shirt worn with
    trousers and shoes), each with the catalogue's best matches in another category.

    One row per product, rewritten whenever the product's image is embedded again and by the
    periodic sweep when missing, computed with another model, or older than
    ``outfits.LOOK_MAX_AGE``. A row with no regions records that the photo shows nothing
    else to match: such products borrow a neighbour's look when they are read.
    """

    product = models.OneToOneField(Product, primary_key=True, related_name="+", on_delete=models.CASCADE)
    model_name = models.CharField(max_length=100)
    # [{"kind", "box": [l, u, r, b], "category": slug | None, "label",
    #   "suggestions": [[product_id, image_id, score], ...]}], the most certain region first.
    regions = models.JSONField(default=list, blank=True)
    # Regions hold suggestions: a look other products may borrow (read through this index).
    has_look = models.BooleanField(default=False, db_index=True)
    computed_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"look of {self.product_id}: {len(self.regions)} regions ({self.model_name})"


class SimilarStrip(models.Model):
    """The similar-items strip of one product, precomputed by the workers (the default scope:
    every category, ``selectors.SIMILAR_STRIP_CARDS`` cards) so that a product page or a
    ``/similar`` request reads one row instead of searching the index.

    Rewritten when the product's image is embedded again, when a newly embedded product is
    near enough to enter it, and by the periodic sweep when missing, computed with another
    model, or older than ``RECOMMENDER_SIMILAR_MAX_AGE``. The cards hold ids and scores only:
    products are loaded fresh when the strip is read, so a hidden product never shows (the
    spare cards take its place) and prices are current.
    """

    product = models.OneToOneField(Product, primary_key=True, related_name="+", on_delete=models.CASCADE)
    model_name = models.CharField(max_length=100)
    # [[product_id, image_id, score, [ids of the other listings of the same photo]], ...], best first.
    cards = models.JSONField(default=list, blank=True)
    # The last card's score: a newly embedded product scoring above it belongs in this strip.
    floor = models.FloatField(default=-1.0)
    computed_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"similar to {self.product_id}: {len(self.cards)} cards ({self.model_name})"
