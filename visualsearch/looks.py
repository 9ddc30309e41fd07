"""Shop the look as a durable search: one upload becomes a ``PhotoSearch`` (the photo shrunk,
the garments found in it, each embedded once); the page, the API and every box the shopper
draws afterwards read from it.

``look_create`` writes (the upload); ``look_results`` reads (a garment of the photo, or a box
drawn on it, with the shopper's filters); ``looks_expire`` is the periodic clean-up.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from config import replicas
from shop.filters import ProductFilters
from visualsearch.categories import category_decide
from visualsearch.colour import ColourProfile, garment_profile
from visualsearch.duplicates.detection import upload_fingerprint
from visualsearch.embedding import load_embedder
from visualsearch.garments import locate_garments, search_box
from visualsearch.models import PhotoSearch
from visualsearch.photos import BadBox, Box, photo_search
from visualsearch.photos import PhotoSearch as SearchOutcome
from visualsearch.selectors import active_model_name, images_same_photo

WHOLE = "whole"
# JPEG quality of the kept photo: enough to redraw it and to crop boxes from it.
STORED_QUALITY = 85
# Pillow's optimised Huffman tables: 12 % smaller (29.1 against 33.0 kB, median of 40 consumer
# photos at 533 px) for 0.6 ms more per upload (1.13 against 0.53 ms), a fortieth of a photo
# search: a search is kept for a day, the shopper waits for every one (2026-12-06).
STORED_OPTIMIZE = False


@dataclass(frozen=True)
class LookItem:
    index: int
    kind: str  # "whole", "top", "bottom", "full_body", "shoes", "headwear" or "item"
    box: tuple[int, int, int, int]  # left, upper, right, lower in pixels of the kept photo
    score: float
    vector: np.ndarray
    colour: ColourProfile | None
    categories: list[dict]  # [{"slug", "name", "probability"}], most likely first
    threshold: float
    context: float = 0.0  # searched with this share of the box's size around it (garments.search_box)
    same_photo: tuple[int, ...] = ()  # the whole photo only: listings whose photo it is, most certain first

    @property
    def label(self) -> str:
        if self.kind == WHOLE:
            return "Whole photo"
        return self.categories[0]["name"] if self.categories else self.kind.replace("_", " ").capitalize()

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        left, upper, right, lower = self.box
        return left, upper, right - left, lower - upper

    def percent(self, width: int, height: int) -> dict[str, float]:
        """The box as percentages of the photo (left, top, width, height), for drawing it over the photo."""
        left, upper, right, lower = self.box
        return {"left": round(100 * left / width, 3), "top": round(100 * upper / height, 3),
                "width": round(100 * (right - left) / width, 3), "height": round(100 * (lower - upper) / height, 3)}

    def thumb_style(self, width: int, height: int) -> str:
        """CSS that shows just this box of the photo as a chip's background."""
        left, upper, right, lower = self.box
        bw, bh = max(1, right - left), max(1, lower - upper)
        x = 100 * left / (width - bw) if width > bw else 0
        y = 100 * upper / (height - bh) if height > bh else 0
        return f"background-size: {100 * width / bw:.2f}% {100 * height / bh:.2f}%; background-position: {x:.2f}% {y:.2f}%"


def _decision_json(vector: np.ndarray, model_name: str) -> tuple[list[dict], float]:
    decision = category_decide(vector=vector, model_name=model_name, auto=False)
    return [{"slug": g.category.slug, "name": g.category.name, "probability": round(g.probability, 4)} for g in decision.guesses], decision.threshold


def _item_json(kind: str, box, score: float, vector: np.ndarray, colour: ColourProfile | None, model_name: str,
               context: float = 0.0) -> dict:
    categories, threshold = _decision_json(vector, model_name)
    return {
        "kind": kind, "box": [int(v) for v in box], "score": round(float(score), 3), "context": context,
        "vector": [round(float(v), 6) for v in vector],
        "colour": [round(float(v), 5) for v in colour.shares] if colour is not None else None,
        "categories": categories, "threshold": threshold,
    }


def _stored(photo: Image.Image) -> tuple[Image.Image, bytes]:
    kept = photo.convert("RGB") if photo.mode != "RGB" else photo.copy()  # never the caller's image: thumbnail() works in place
    kept.thumbnail((PhotoSearch.STORED_SIDE, PhotoSearch.STORED_SIDE))
    buffer = io.BytesIO()
    kept.save(buffer, format="JPEG", quality=STORED_QUALITY, optimize=STORED_OPTIMIZE)
    return kept, buffer.getvalue()


def look_create(*, photo: Image.Image, locate: bool = True) -> PhotoSearch:
    """Keep the (upright, RGB) photo shrunk, find its garments, embed the whole photo and
    each garment in one batch with the active model, and guess each one's category."""
    model_name = active_model_name()
    kept, data = _stored(photo)
    regions = locate_garments(kept) if locate else []
    crops = [kept] + [kept.crop(search_box(r.box, kept.width, kept.height, r.context)) for r in regions]
    vectors = load_embedder(model_name).embed_queries(crops, whole=[True] + [False] * len(regions))
    items = [_item_json(WHOLE, (0, 0, kept.width, kept.height), 1.0, vectors[0], garment_profile(kept), model_name)]
    # A saved product picture, a screenshot or a thumbnail of a listing: that listing first.
    items[0]["same_photo"] = [
        {"product": m.product_id, "image": m.image_id, "score": m.score, "hash_distance": m.hash_distance}
        for m in images_same_photo(fingerprint=upload_fingerprint(kept), vector=vectors[0], model_name=model_name)
    ]
    items += [
        _item_json(r.kind, r.box, r.score, vector, garment_profile(kept, r.box), model_name, r.context)
        for r, vector in zip(regions, vectors[1:], strict=True)
    ]
    # The garment the shopper most likely came for goes first after the whole photo.
    items[1:] = sorted(items[1:], key=lambda item: -item["score"])
    retention = timedelta(hours=settings.VISUALSEARCH_SEARCH_RETENTION_HOURS)
    return PhotoSearch.objects.create(
        model_name=model_name, photo=data, width=kept.width, height=kept.height, items=items,
        expires_at=timezone.now() + retention,
    )


def look_get(*, search_id) -> PhotoSearch | None:
    """The search, or None when it never existed or has expired."""
    # A link shared seconds after the search was made may reach a read replica that has
    # not replayed it yet: a miss there is asked again of the primary (one primary-key
    # lookup, only on misses), so the link never says "gone" for a search that exists.
    return replicas.primary_if_missing(
        lambda: PhotoSearch.objects.filter(id=search_id, expires_at__gt=timezone.now()).first()
    )


def look_items(search: PhotoSearch) -> list[LookItem]:
    return [
        LookItem(
            index=n, kind=item["kind"], box=tuple(item["box"]), score=item["score"],
            vector=np.asarray(item["vector"], dtype=np.float32),
            colour=ColourProfile(np.asarray(item["colour"], dtype=np.float64)) if item.get("colour") else None,
            categories=item.get("categories", []), threshold=item.get("threshold", 1.0),
            context=item.get("context", 0.0),  # searches kept before 2026-12-07 said nothing: as found
            same_photo=tuple(m["product"] for m in item.get("same_photo", ())),
        )
        for n, item in enumerate(search.items)
    ]


def look_default_item(search: PhotoSearch) -> int:
    """The item searched first: the whole photo when it is a listing's photo, else the most
    certain garment, else the whole photo."""
    return 1 if len(search.items) > 1 and not search.items[0].get("same_photo") else 0


def look_photo(search: PhotoSearch) -> Image.Image:
    image = Image.open(io.BytesIO(bytes(search.photo)))
    image.load()
    return image


@dataclass(frozen=True)
class LookResults:
    item: LookItem  # the garment searched (a drawn box becomes an item of kind "box")
    outcome: SearchOutcome
    model_changed: bool  # the active model changed since the upload: the search re-embedded


def look_results(
    *,
    search: PhotoSearch,
    k: int,
    item: int | None = None,
    box: Box | None = None,
    filters: ProductFilters | None = None,
    auto_category: bool = True,
) -> LookResults:
    """Results for one garment of the photo (``item``) or for a box drawn on it (``box``, in
    pixels of the kept photo). Raises ``BadBox`` for a box off the photo, ``IndexError`` for
    an unknown item."""
    items = look_items(search)
    model_name = active_model_name()
    changed = model_name != search.model_name
    if box is not None or changed:
        image = look_photo(search)
        if box is not None:
            crop = box.clamp_to(image.width, image.height)
            if crop is None:
                raise BadBox(f"The box must overlap the photo ({image.width}x{image.height} pixels).")
            chosen_kind, chosen_box, score, context, same_photo, index = "box", crop, 1.0, 0.0, (), -1  # the shopper's box, as drawn
        else:
            chosen = items[look_default_item(search) if item is None else item]
            chosen_kind, chosen_box, score, context, same_photo, index = (
                chosen.kind, chosen.box, chosen.score, chosen.context, chosen.same_photo, chosen.index
            )
        region = image.crop(search_box(chosen_box, image.width, image.height, context))
        vector = load_embedder(model_name).embed_queries([region], whole=[chosen_kind == WHOLE])[0]
        colour = garment_profile(image, chosen_box)
        categories, threshold = _decision_json(vector, model_name)
        target = LookItem(index=index, kind=chosen_kind, box=tuple(chosen_box), score=score, vector=vector, colour=colour,
                          categories=categories, threshold=threshold, context=context, same_photo=same_photo)
    else:
        target = items[look_default_item(search) if item is None else item]
    outcome = photo_search(
        vector=target.vector, colour=target.colour, k=k, model_name=model_name, filters=filters, auto_category=auto_category,
        same_photo=target.same_photo,
    )
    return LookResults(item=target, outcome=outcome, model_changed=changed)


def looks_expire() -> int:
    """Delete the searches past their retention; returns how many."""
    with transaction.atomic():
        deleted, _ = PhotoSearch.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
