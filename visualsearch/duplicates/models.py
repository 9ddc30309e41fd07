"""Duplicate listings: per-image fingerprints, flagged product pairs, and the review audit trail.

These models belong to the ``visualsearch`` app (``visualsearch/models.py`` imports them,
migrations live in ``visualsearch/migrations``); the code that uses them lives beside them
in ``visualsearch.duplicates``. They depend on the catalogue only.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models

from shop.models import Product, ProductImage


class ImageFingerprint(models.Model):
    """The perceptual hash of a product image, computed where the image is decoded for embedding.

    ``sha256`` records which bytes were hashed: when an image's bytes are replaced the
    fingerprint is stale and is recomputed. ``checked_at`` is when the image was last
    compared with the rest of the catalogue (``scan_duplicates --only-unchecked`` uses it).
    """

    image = models.OneToOneField(ProductImage, primary_key=True, related_name="fingerprint", on_delete=models.CASCADE)
    sha256 = models.CharField(max_length=64)
    # 256-bit DCT hashes (imagehash.phash, hash_size 16) as hex, of the whole image and of the
    # image trimmed to its non-white content; compared by Hamming distance (detection.py).
    phash = models.CharField(max_length=64)
    phash_trim = models.CharField(max_length=64)
    # 8x8 RGB thumbnails (whole, trimmed) as hex, for the colour check (the hashes are
    # grey-level only); "" = not computed yet.
    colour = models.CharField(max_length=768, blank=True, default="")
    # Tagged 16-bit bands of both hashes: images within 15 bits share one (GIN && lookup).
    bands = ArrayField(models.IntegerField(), default=list)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "visualsearch"
        indexes = [GinIndex(fields=["bands"], name="fingerprint_bands_gin")]

    def __str__(self) -> str:
        return f"fingerprint of image {self.image_id}"


class DuplicateFlag(models.Model):
    """Two products that look like one item listed twice, for a merchandiser to review.

    The pair is unordered and stored once (``product_a`` has the lower id). A flag is never
    deleted by detection and never re-opened by it: a dismissed pair stays dismissed.
    """

    class Kind(models.TextChoices):
        EXACT = "exact", "Exact copy"
        NEAR = "near", "Near copy"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CONFIRMED = "confirmed", "Confirmed"
        DISMISSED = "dismissed", "Dismissed"

    product_a = models.ForeignKey(Product, related_name="+", on_delete=models.CASCADE)
    product_b = models.ForeignKey(Product, related_name="+", on_delete=models.CASCADE)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    score = models.FloatField(help_text="0..1, higher is more certain; exact copies score 1.")
    # Evidence: the closest pair of images, their CNN cosine similarity and pHash distance.
    image_a = models.ForeignKey(ProductImage, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    image_b = models.ForeignKey(ProductImage, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    cosine = models.FloatField()
    hash_distance = models.PositiveSmallIntegerField()
    evidence = models.JSONField(default=dict, blank=True)
    # Set when confirmed: the listing that stays and the one that was hidden.
    kept_product = models.ForeignKey(Product, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    hidden_product = models.ForeignKey(Product, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "visualsearch"
        ordering = ["-score", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product_a", "product_b"], name="duplicateflag_unique_pair"),
            models.CheckConstraint(condition=models.Q(product_a__lt=models.F("product_b")), name="duplicateflag_ordered_pair"),
        ]
        indexes = [
            models.Index(fields=["status", "-score", "id"], name="duplicateflag_queue_idx"),
            models.Index(fields=["product_b"], name="duplicateflag_product_b_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}: products {self.product_a_id} and {self.product_b_id}"


class DuplicateFlagAction(models.Model):
    """One review action on a flag: who did what, when (the audit trail)."""

    class Action(models.TextChoices):
        CONFIRM = "confirm", "Confirmed"
        DISMISS = "dismiss", "Dismissed"
        SKIP = "skip", "Skipped"
        REOPEN = "reopen", "Re-opened"

    flag = models.ForeignKey(DuplicateFlag, related_name="actions", on_delete=models.CASCADE)
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # e.g. {"kept": 12, "hidden": 34, "via": "web"}
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "visualsearch"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["flag", "action", "actor"], name="duplicateaction_flag_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} flag {self.flag_id} by {self.actor_id} at {self.at:%Y-%m-%d %H:%M}"
