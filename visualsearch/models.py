"""Image embeddings, one row per (product image, model), in pgvector.

Vectors are stored as ``halfvec`` without a fixed dimension so that models of different
sizes (EfficientNet-Lite0 1280, ResNet-50 2048, a fine-tuned 256-d head) can live side by
side while a catalogue is re-indexed. Each model gets its own partial HNSW index over
``vector::halfvec(<dim>)``; ``visualsearch.index`` builds both that index and the queries'
distance expression, so that the planner picks the index.

Why halfvec: half the bytes of ``vector`` and HNSW indexes up to 4,000 dimensions
(``vector`` stops at 2,000, below ResNet-50's 2,048). Recall against float32 exact
search is measured in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from pgvector.django import HalfVectorField

from shop.models import Product, ProductImage

# The duplicate-listing models are defined beside the code that uses them and belong to
# this app (their migrations are this app's); importing them here registers them.
from visualsearch.duplicates.models import (
    DuplicateFlag,
    DuplicateFlagAction,
    ImageFingerprint,
)


class ImageEmbedding(models.Model):
    image = models.ForeignKey(ProductImage, related_name="embeddings", on_delete=models.CASCADE)
    # Denormalised from image.product so that filtered searches join one table, not two.
    product = models.ForeignKey(Product, related_name="embeddings", on_delete=models.CASCADE)
    model_name = models.CharField(max_length=64)
    dim = models.PositiveIntegerField()
    vector = HalfVectorField()
    # Denormalised from image.sha256. Of the rows of one model holding the same bytes (an
    # exact copy listed under several products), one is canonical: only canonical rows are
    # in the HNSW index, so a photo re-used by 500 listings is one graph node, not 500
    # identical ones (identical vectors degrade HNSW). Searches reach the copies through
    # the canonical row (``visualsearch.selectors.nearest_product_ids``). A deleted
    # canonical row hands the node to another copy (``visualsearch.signals``).
    sha256 = models.CharField(max_length=64, blank=True, default="")
    is_canonical = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_name"], name="embedding_unique_image_model"),
        ]
        indexes = [
            models.Index(fields=["model_name", "product"], name="embedding_model_product_idx"),
            models.Index(fields=["model_name", "sha256"], name="embedding_model_sha256_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} embedding of image {self.image_id}"


__all__ = [
    "DuplicateFlag", "DuplicateFlagAction", "EmbeddingModel", "ImageEmbedding", "ImageFingerprint", "ModelActivation",
    "PhotoSearch",
]


class EmbeddingModel(models.Model):
    """An embedding model known to this catalogue, and where it stands.

    Exactly one model is ``active``: searches and duplicate detection read its vectors. A
    ``candidate`` is being indexed (or is indexed) beside it and can be promoted once its
    index is complete; the model it replaces becomes the ``standby``, still kept fresh, so a
    rollback is instant. New uploads are embedded with every model that is not ``retired``.
    Without any row, the active model is the setting ``VISUALSEARCH_MODEL``.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        CANDIDATE = "candidate", "Candidate"
        STANDBY = "standby", "Standby (previous active, kept fresh)"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CANDIDATE)
    index_requested_at = models.DateTimeField(null=True, blank=True)
    index_completed_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="active"), name="embeddingmodel_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class ModelActivation(models.Model):
    """Who made which model active, when, and which one it replaced (what a rollback restores)."""

    class Action(models.TextChoices):
        PROMOTE = "promote", "Promoted"
        ROLLBACK = "rollback", "Rolled back"

    model = models.ForeignKey(EmbeddingModel, related_name="activations", on_delete=models.CASCADE)
    previous = models.ForeignKey(EmbeddingModel, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    previous_name = models.CharField(max_length=64, blank=True)  # the setting's model has no row before its first promotion
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.model.name} at {self.at:%Y-%m-%d %H:%M}"


class PhotoSearch(models.Model):
    """A shopper's photo search, kept so that it lives at a URL (Back, reload and share work)
    and its boxes can be moved without uploading again.

    Kept: the photo shrunk to ``STORED_SIDE`` pixels (JPEG; never the upload itself), the
    garments found in it with their vectors and category guesses. Never longer than
    ``VISUALSEARCH_SEARCH_RETENTION_HOURS`` (default 24): the periodic
    ``photo_searches_expire`` task deletes older ones, and an expired search answers 410.
    The id is random (UUID4): knowing it is the only way to see the photo.
    """

    STORED_SIDE = 1280

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_name = models.CharField(max_length=64)
    photo = models.BinaryField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # [{"kind": "whole" | "top" | ..., "box": [left, upper, right, lower], "score": float,
    #   "vector": [...], "colour": [...16 shares] | None, "categories": [{"slug", "name", "probability"}],
    #   "threshold": float}], the whole photo first.
    items = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"photo search {self.id} ({len(self.items)} items)"
