"""Receivers, connected in ``VisualsearchConfig.ready``."""

from __future__ import annotations

from django.db.models.signals import post_delete

from shop.signals import product_images_changed
from visualsearch.models import ImageEmbedding
from visualsearch.services import embeddings_canonical_elect
from visualsearch.tasks import embedding_schedule


def _schedule_embedding(sender, *, image_ids, **kwargs) -> None:
    embedding_schedule(image_ids=image_ids)


def _elect_after_delete(sender, instance: ImageEmbedding, **kwargs) -> None:
    """A deleted canonical embedding row hands the HNSW node to another copy of its bytes."""
    if instance.is_canonical and instance.sha256:
        embeddings_canonical_elect(model_name=instance.model_name, shas=[instance.sha256])


def connect() -> None:
    product_images_changed.connect(_schedule_embedding, dispatch_uid="visualsearch_schedule_embedding")
    post_delete.connect(_elect_after_delete, sender=ImageEmbedding, dispatch_uid="embedding_canonical_elect")
