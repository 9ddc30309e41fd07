"""Reading stored product images for indexing: one decode per image, from which both the
embedding's input and the duplicate detector's fingerprint are made.

The worker's task path (``visualsearch.indexing``), the bulk pipeline
(``visualsearch.pipeline``) and the duplicate scan (fingerprints of images indexed before
fingerprints existed) all read through here, and all treat a file that cannot be decoded
the same way: :data:`DECODE_ERRORS`, reported with the image's id, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from PIL import Image

from visualsearch.duplicates.detection import Fingerprint, fingerprint

# What a missing, truncated or damaged stored file raises while it is opened and decoded.
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, Image.DecompressionBombError)


def stored_image_open(name: str) -> Image.Image:
    """Decode a stored file fully (so that a broken file fails here, not later)."""
    with default_storage.open(name, "rb") as handle:
        image = Image.open(handle)
        image.load()
    return image


@dataclass(frozen=True)
class StoredImage:
    """What the indexing paths need of a product image row."""

    id: int
    product_id: int
    name: str  # the storage name (``ProductImage.image``)


@dataclass
class ReadBatch:
    images: list[StoredImage]  # the readable ones, in order
    inputs: list[Any]  # per readable image: the decoded picture, or ``prepare(picture)``
    fingerprints: list[Fingerprint]
    failed: list[tuple[int, str]]  # (image id, reason) of the unreadable ones


def images_read(images: Sequence[StoredImage], *, prepare: Callable[[Image.Image], Any] | None = None) -> ReadBatch:
    """Decode each image once; keep ``prepare(image)`` (e.g. the model's input tensor) and its fingerprint."""
    batch = ReadBatch(images=[], inputs=[], fingerprints=[], failed=[])
    for image in images:
        try:
            picture = stored_image_open(image.name)
            prepared = prepare(picture) if prepare else picture
            printed = fingerprint(picture)
        except DECODE_ERRORS as exc:
            batch.failed.append((image.id, f"{Path(image.name).name}: {exc}"))
            continue
        batch.images.append(image)
        batch.inputs.append(prepared)
        batch.fingerprints.append(printed)
    return batch
