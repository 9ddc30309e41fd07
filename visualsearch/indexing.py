"""Indexing new and changed product images: decode once, embed, store the vectors, store the
fingerprints, then look for duplicate listings, in that order.

Two callers: the workers' task and the sweep (:func:`images_embed`, a few images at a time)
and the bulk pipeline (``visualsearch.pipeline``, the whole catalogue). Both end each batch in
:func:`batch_store`, the one place that sequences the vector store and the duplicate
detector. Detection runs after the vectors are committed, in its own transaction: a failure
there leaves the embeddings in place, and a retried task detects again without creating
anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from shop.models import ProductImage
from visualsearch import events, index, services
from visualsearch.duplicates.detection import Fingerprint
from visualsearch.duplicates.services import duplicates_detect, fingerprints_store
from visualsearch.embedding import load_embedder
from visualsearch.reader import StoredImage, images_read
from visualsearch.selectors import active_model_name, models_kept_fresh

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedResult:
    embedded: int
    failed: list[tuple[int, str]]


def batch_store(
    *,
    images: Sequence[StoredImage],
    vectors: np.ndarray,
    fingerprints: Sequence[Fingerprint] | None,
    model_name: str,
    detect_duplicates: bool = True,
) -> None:
    """Store one embedded batch: vectors and fingerprints together, then (for the active
    model) compare the batch with the catalogue for duplicate listings."""
    if not images:
        return
    with transaction.atomic():
        services.embeddings_store(images=images, vectors=vectors, model_name=model_name)
        if fingerprints is not None:
            fingerprints_store(fingerprints={img.id: fp for img, fp in zip(images, fingerprints, strict=True)})
    if detect_duplicates and model_name == active_model_name():
        duplicates_detect(image_ids=[img.id for img in images], model_name=model_name)


def stored_images(image_ids: Iterable[int]) -> list[StoredImage]:
    """The images that still exist, in id order (an id may have been deleted since it was enqueued)."""
    rows = ProductImage.objects.filter(id__in=set(image_ids)).order_by("id").values_list("id", "product_id", "image")
    return [StoredImage(*row) for row in rows]


def images_embed(*, image_ids: Iterable[int], model_name: str | None = None, detect_duplicates: bool = True) -> EmbedResult:
    """Embed the given product images, store them and check them for duplicates.

    With ``model_name`` only that model; by default every model kept fresh (the active one,
    then a candidate being indexed beside it and the standby kept for a rollback), each
    image decoded once for all of them. Duplicates are looked for with the active model.

    Unknown ids are ignored; images that cannot be decoded are reported in ``failed``
    (and logged) and lose their dirty flag: the stored file passed the upload checks, so it
    is missing or damaged, and retrying it every sweep would starve the other dirty images.
    """
    names = [model_name] if model_name else models_kept_fresh()
    active = active_model_name()
    batch = images_read(stored_images(image_ids))
    for image_id, reason in batch.failed:
        logger.warning("Cannot embed product image %s: %s", image_id, reason)
    if batch.failed:
        ProductImage.objects.filter(id__in=[i for i, _ in batch.failed]).update(embedding_dirty=False)
    for n, name in enumerate(names):
        if not batch.images:
            break
        embedder = load_embedder(name)
        batch_store(
            images=batch.images,
            vectors=embedder.embed(batch.inputs),
            fingerprints=batch.fingerprints if n == 0 else None,
            model_name=embedder.name,
            detect_duplicates=detect_duplicates and embedder.name == active,
        )
        index.embedding_index_ensure(model_name=embedder.name, dim=embedder.dim)
    if batch.images and active in names:
        events.images_embedded.send(
            sender=images_embed, product_ids=sorted({img.product_id for img in batch.images}), model_name=active
        )
    return EmbedResult(embedded=len(batch.images), failed=batch.failed)


def dirty_image_ids(*, limit: int) -> list[int]:
    return list(ProductImage.objects.filter(embedding_dirty=True).order_by("id").values_list("id", flat=True)[:limit])


def embedding_sweep(*, batch_size: int | None = None) -> int:
    """Embed up to ``batch_size`` dirty images (whose task was lost); return how many were embedded."""
    ids = dirty_image_ids(limit=batch_size or settings.VISUALSEARCH_SWEEP_BATCH)
    if not ids:
        return 0
    return images_embed(image_ids=ids).embedded
