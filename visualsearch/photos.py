"""Searching with a shopper's photo: the optional box around one garment, the embedding of
the photo (or the boxed part) with the active model, and the search it feeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from shop.filters import ProductFilters
from visualsearch.embedding import load_embedder
from visualsearch.selectors import ProductMatch, active_model_name, product_search_by_vector

# A box smaller than this holds too little of the garment for the CNN to see anything.
MIN_BOX_SIDE = 16


class BadBox(ValueError):
    pass


@dataclass(frozen=True)
class Box:
    """A region of the uploaded photo, in pixels of the image as uploaded (after EXIF rotation)."""

    x: int
    y: int
    w: int
    h: int

    def clamp_to(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """The (left, upper, right, lower) crop inside the image, or None if nothing is left."""
        left, upper = max(0, self.x), max(0, self.y)
        right, lower = min(width, self.x + self.w), min(height, self.y + self.h)
        if right - left < MIN_BOX_SIDE or lower - upper < MIN_BOX_SIDE:
            return None
        return left, upper, right, lower


def photo_embed(*, image: Image.Image, box: Box | None = None, model_name: str | None = None) -> np.ndarray:
    """Embed an uploaded photo (a PIL image), cropped to ``box`` when given."""
    image = ImageOps.exif_transpose(image)
    if box is not None:
        crop = box.clamp_to(*image.size)
        if crop is None:
            raise BadBox(
                f"The box must overlap the photo ({image.size[0]}x{image.size[1]} pixels) "
                f"by at least {MIN_BOX_SIDE}x{MIN_BOX_SIDE} pixels."
            )
        image = image.crop(crop)
    return load_embedder(model_name or active_model_name()).embed([image])[0]


def product_search_by_photo(
    *, image: Image.Image, k: int, box: Box | None = None, filters: ProductFilters | None = None
) -> list[ProductMatch]:
    """Shop the look: the ``k`` active products that look most like the photo (or the boxed part)."""
    return product_search_by_vector(vector=photo_embed(image=image, box=box), k=k, filters=filters)
