"""Searching with a shopper's photo: the optional box around one garment, the embedding of
the photo (or the boxed part) with the active model, what it looks like (category and
colour), and the search they feed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps

from shop.filters import ProductFilters
from visualsearch.categories import CategoryDecision, category_decide, category_holds_product
from visualsearch.colour import ColourProfile
from visualsearch.embedding import load_embedder, model_metadata
from visualsearch.selectors import (
    CategoryTerm,
    ProductMatch,
    active_model_name,
    nearest_product,
    product_search_by_vector,
)

# Defaults for a model whose metadata.json carries no measured "search" settings (the lab's
# evaluate_matching writes them for the models it measures; docs/benchmarks.md):
# the colour term's weight (added to the cosine, times the 0..1 colour similarity), and
# the cosine under which a result is not shown as a match.
DEFAULT_COLOUR_WEIGHT = 0.05
DEFAULT_RELEVANCE_FLOOR = 0.0
# The category term (selectors.CategoryTerm): its weight (added to the cosine, times the
# classifier's probability of the product's category) and the nearest candidate's cosine from
# which it is left out. Off (weight 0, no gate) until measured for a model: both depend on how
# well that model's classifier is calibrated and how its cosines spread.
DEFAULT_CATEGORY_WEIGHT = 0.0
DEFAULT_CATEGORY_GATE = float("inf")
# A confident category guess narrows the search only while the catalogue's nearest product is
# below this cosine: a photo that close to one product is most likely of it, and a wrong guess
# must not filter it out. None (always narrow) until measured for a model (evaluate_matching's
# NARROW_GATES rule); it costs one plain index read (~1 ms) for the searches it could narrow.
DEFAULT_NARROW_GATE = float("inf")

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


def _crop(image: Image.Image, box: Box | None) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    if box is None:
        return image, None
    crop = box.clamp_to(*image.size)
    if crop is None:
        raise BadBox(
            f"The box must overlap the photo ({image.size[0]}x{image.size[1]} pixels) "
            f"by at least {MIN_BOX_SIDE}x{MIN_BOX_SIDE} pixels."
        )
    return image.crop(crop), crop


def photo_embed(*, image: Image.Image, box: Box | None = None, model_name: str | None = None) -> np.ndarray:
    """Embed an uploaded photo (a PIL image) as a query (``Embedder.embed_queries``: the whole
    photo with the model's query crop), or the region ``box`` of it when given."""
    region, _ = _crop(ImageOps.exif_transpose(image), box)
    return load_embedder(model_name or active_model_name()).embed_queries([region], whole=[box is None])[0]


@dataclass(frozen=True)
class SearchSettings:
    colour_weight: float
    relevance_floor: float
    category_weight: float = DEFAULT_CATEGORY_WEIGHT
    category_gate: float = DEFAULT_CATEGORY_GATE
    narrow_gate: float = DEFAULT_NARROW_GATE


@functools.lru_cache(maxsize=16)
def search_settings(model_name: str) -> SearchSettings:
    """The model's measured colour weight and relevance floor (metadata.json "search"; read
    once per process: the lab writes it offline, before a model is deployed)."""
    measured = model_metadata(model_name).get("search", {})
    return SearchSettings(
        colour_weight=float(measured.get("colour_weight", DEFAULT_COLOUR_WEIGHT)),
        relevance_floor=float(measured.get("relevance_floor", DEFAULT_RELEVANCE_FLOOR)),
        category_weight=float(measured.get("category_weight", DEFAULT_CATEGORY_WEIGHT)),
        category_gate=float(measured.get("category_gate", DEFAULT_CATEGORY_GATE)),
        narrow_gate=float(measured.get("narrow_gate", DEFAULT_NARROW_GATE)),
    )


@dataclass(frozen=True)
class PhotoSearch:
    """One photo search: what the photo looks like and what the catalogue has like it."""

    model_name: str
    matches: list[ProductMatch]  # above the relevance floor, best first
    category: CategoryDecision  # the guess, and the category the search was narrowed to
    colour: ColourProfile | None
    nearest_score: float | None  # the best cosine, shown or not
    relevance_floor: float

    @property
    def nothing_close(self) -> bool:
        """Products passed the filters, but none close enough to show as a match."""
        return not self.matches and self.nearest_score is not None


def photo_search(
    *,
    vector: np.ndarray,
    colour: ColourProfile | None,
    k: int,
    model_name: str,
    filters: ProductFilters | None = None,
    auto_category: bool = True,
    same_photo: Sequence[int] = (),
) -> PhotoSearch:
    """Search with an embedded photo region: guess its category (and narrow the search to it
    when confident and the shopper chose none), rank by similarity plus the colour term and,
    unless the shopper chose a category or "any category", the category term, and keep what
    clears the model's relevance floor. A guess narrows while the catalogue's nearest product
    is below the model's narrowing gate (``SearchSettings.narrow_gate``), or is inside the guess.
    ``same_photo``: listings whose photo this is (``images_same_photo``): they come first,
    above any floor, and the search is not narrowed to a guessed category (which could leave
    them out)."""
    filters = filters or ProductFilters()
    tuned = search_settings(model_name)
    guessing = auto_category and not filters.category
    decision = category_decide(vector=vector, model_name=model_name, auto=guessing and not same_photo)
    if decision.applied is not None and tuned.narrow_gate <= 1.0:
        nearest = nearest_product(vector=vector, model_name=model_name)
        # At or above the gate the photo is most likely of its nearest product: narrow only
        # if that product stays reachable (it is inside the scope searched; then narrowing only
        # clears other categories from below it).
        if nearest is not None and nearest[0] >= tuned.narrow_gate and not category_holds_product(decision.scope, product_id=nearest[1]):
            decision = replace(decision, applied=None, scope=())
    if decision.applied is not None:
        filters = replace(filters, categories=tuple(c.slug for c in decision.scope))
    matches = product_search_by_vector(
        vector=vector, k=k, filters=filters, model_name=model_name, colour=colour, colour_weight=tuned.colour_weight,
        category=CategoryTerm(decision.prior, tuned.category_weight, tuned.category_gate) if guessing else None,
        same_photo=same_photo,
    )
    return PhotoSearch(
        model_name=model_name,
        matches=[m for m in matches if m.score >= tuned.relevance_floor or m.same_photo],
        category=decision,
        colour=colour,
        nearest_score=max((m.score for m in matches), default=None),
        relevance_floor=tuned.relevance_floor,
    )


def product_search_by_photo(
    *, image: Image.Image, k: int, box: Box | None = None, filters: ProductFilters | None = None
) -> list[ProductMatch]:
    """The ``k`` active products that look most like the photo (or the boxed part), with the
    shopper's filters only (no category guess, no floor): the plain nearest neighbours."""
    model_name = active_model_name()
    return product_search_by_vector(vector=photo_embed(image=image, box=box, model_name=model_name), k=k, filters=filters,
                                    model_name=model_name)
