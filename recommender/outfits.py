"""Complete the look: the other garments a product's own photo shows, matched to the catalogue.

Catalogue photos often show a model wearing the product with other garments (a shirt with
jeans and shoes): a free source of outfits. For one product this module finds those
garments (``visualsearch.garments``, the same localisation as shop the look), embeds each
region with the active model, guesses its category (``visualsearch.categories``) and keeps
the regions that are confidently something *else* than the product: another family of the
catalogue (Topwear, Bottomwear, Shoes ... : the categories one level under the roots). Each
kept region is searched like a shopper's photo (category narrowed, colour term, relevance
floor), for products of the product's gender in that other family.

The result is plain data, stored by ``recommender.services.product_looks_refresh`` in
``ProductLook`` and read by ``recommender.selectors.product_complete_look``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from PIL import Image, ImageOps

from shop.filters import ProductFilters
from shop.models import Category, Product
from visualsearch.categories import CategoryGuess, category_decide, category_scope
from visualsearch.colour import garment_profile
from visualsearch.embedding import load_embedder
from visualsearch.garments import GarmentRegion, locate_worn_garments
from visualsearch.photos import photo_search

# Suggestions kept per garment region: a row of the strip per region reads well at 4.
SUGGESTIONS_PER_REGION = 4
# Candidates searched per suggestion kept: the gender rule and the exclusions drop some.
SEARCH_HEADROOM = 3
# Regions matched per product: a person photo gives top, bottom, full body and shoes; the
# product itself is one of them.
MAX_REGIONS = 3
# The pose regions a look is made of. Not "headwear": catalogue models rarely wear a hat, and
# on 190 bare heads of the demo catalogue the classifier named no headwear once (it said
# "Sweaters"); flat-lay items are the product itself.
LOOK_KINDS = ("top", "bottom", "full_body", "shoes")
# A region counts as a garment of the look only when the category classifier is at least
# this sure what it is. The pose regions cover body parts whether or not a garment is there
# (a top's hem gives a "bottom" region); on 400 demo products' photos, bottom regions with a
# guess at 0.5 or more were bottomwear 58 times in 67 where the product was not (below 0.5:
# 23 in 30); docs/benchmarks.md, "Complete the look", has the measurement.
MIN_REGION_PROBABILITY = 0.5
# A region this similar (cosine) to the product's own photo is the product, whatever the
# classifier says (a long shirt read as a dress, a kurta set as a kurta).
OWN_REGION_SIMILARITY = 0.8
# The sweep recomputes looks older than this: the catalogue gains products worth suggesting.
LOOK_MAX_AGE = timedelta(days=7)
# Genders whose products suit a product's gender ("" is an unlabelled product: anything goes).
COMPATIBLE_GENDERS = {
    Product.Gender.MEN: {Product.Gender.MEN, Product.Gender.UNISEX},
    Product.Gender.WOMEN: {Product.Gender.WOMEN, Product.Gender.UNISEX},
    Product.Gender.BOYS: {Product.Gender.BOYS, Product.Gender.UNISEX},
    Product.Gender.GIRLS: {Product.Gender.GIRLS, Product.Gender.UNISEX},
}


def category_family_id(category_id: int, nodes: dict[int, Category]) -> int:
    """The family of a category: its ancestor one level under a root ("Apparel > Topwear"
    for "Apparel > Topwear > Tshirts"); a root is its own family."""
    node = nodes.get(category_id)
    while node is not None and node.depth > 1 and node.parent_id in nodes:
        node = nodes[node.parent_id]
    return node.id if node is not None else category_id


def genders_suiting(gender: str) -> set[str] | None:
    """Genders whose products go with a product of ``gender``; None: any."""
    return COMPATIBLE_GENDERS.get(gender)


@dataclass(frozen=True)
class LookRegion:
    kind: str  # the locator's kind: top, bottom, full_body, shoes, headwear or item
    box: tuple[int, int, int, int]
    category: Category  # the category it was narrowed to
    probability: float
    suggestions: list[tuple[int, int, float, int]]  # (product_id, image_id, score, family_id)
    photo_size: tuple[int, int]  # width, height of the photo the box is in

    def as_json(self) -> dict:
        return {
            "kind": self.kind, "box": list(self.box), "size": list(self.photo_size),
            "category": self.category.slug, "label": self.category.name,
            "probability": round(self.probability, 4),
            "suggestions": [[pid, iid, round(score, 4), fam] for pid, iid, score, fam in self.suggestions],
        }


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def look_regions(
    *,
    product: Product,
    image: Image.Image,
    vector: np.ndarray,
    model_name: str,
    nodes: dict[int, Category],
    exclude_product_ids: set[int],
) -> list[LookRegion]:
    """The garments worn in ``image`` (the product's primary photo) that are not the
    product, each with its suggestions, the most certain first.

    ``vector`` is the product's stored embedding, ``nodes`` the category tree by id,
    ``exclude_product_ids`` the product and its confirmed duplicates.
    """
    image = ImageOps.exif_transpose(image).convert("RGB")
    located = [region for region in locate_worn_garments(image) if region.kind in LOOK_KINDS]
    if not located:
        return []
    vectors = load_embedder(model_name).embed([image.crop(region.box) for region in located])
    own_family = category_family_id(product.category_id, nodes)
    product_vector = _unit(np.asarray(vector, dtype=np.float32))
    chosen: dict[int, tuple[GarmentRegion, np.ndarray, CategoryGuess]] = {}  # by family: the most certain region
    for region, region_vector in zip(located, vectors, strict=True):
        if float(region_vector @ product_vector) >= OWN_REGION_SIMILARITY:
            continue
        top = category_decide(vector=region_vector, model_name=model_name, auto=False).top
        if top is None or top.probability < MIN_REGION_PROBABILITY:
            continue  # not sure what it is: skin, the background, a garment cut off by the frame
        family = category_family_id(top.category.id, nodes)
        if family == own_family:
            continue  # the product itself, or another piece of its kind
        if family not in chosen or chosen[family][2].probability < top.probability:
            chosen[family] = (region, region_vector, top)
    kept = []
    for family, (region, region_vector, top) in sorted(chosen.items(), key=lambda item: -item[1][2].probability)[:MAX_REGIONS]:
        scope = category_scope(top.category)
        if category_family_id(scope.id, nodes) != family:
            scope = top.category  # widening a small category must not reach the product's own family
        outcome = photo_search(
            vector=region_vector, colour=garment_profile(image, region.box), k=SUGGESTIONS_PER_REGION * SEARCH_HEADROOM,
            model_name=model_name, filters=ProductFilters(category=scope.slug, gender=product.gender or None), auto_category=False,
        )
        suggestions = [
            (match.product.id, match.image_id, float(match.score), family)
            for match in outcome.matches
            if match.product.id not in exclude_product_ids
        ][:SUGGESTIONS_PER_REGION]
        if suggestions:
            kept.append(LookRegion(
                kind=region.kind, box=tuple(int(v) for v in region.box), category=top.category,
                probability=float(top.probability), suggestions=suggestions, photo_size=image.size,
            ))
    return kept
