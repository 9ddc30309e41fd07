"""A catalogue whose vectors are made here, not by the CNN, so that its geometry is known:
flats, polos and bags each around a centre of their own, and kurtas around the mean of
those three centres, where the mean of a flat's, a polo's and a bag's vectors lands (the
failure of the old mean-vector recommender). Shared by the recommender's selector, page and
history tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from shop.models import Category, Product
from tests.factories import CategoryFactory, MerchantFactory, ProductFactory, ProductImageFactory
from visualsearch.services import embeddings_store

DIM = 64  # any dimension: the store keeps halfvecs of any size, the searches follow the query's
# key prefix -> (category key, how many, spread around the centre). Spread 0.5 puts two
# products of one category at cosine ~0.8: alike, never near-identical (0.97).
SPECS = {
    "flat": ("flats", 6),
    "polo": ("tshirts", 6),
    "handbag": ("handbags", 6),
    "messenger": ("messenger", 2),
    "kurta": ("kurtas", 8),
    "sneaker": ("sneakers", 4),
    "watch": ("watches", 4),
}
SPREAD = 0.5


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@dataclass
class InterestCatalogue:
    products: dict[str, Product]  # "flat0", "polo3", ...
    categories: dict[str, Category]
    centres: dict[str, np.ndarray]  # by category key
    rng: np.random.Generator

    def keys(self, products) -> list[str]:
        by_id = {p.id: key for key, p in self.products.items()}
        return [by_id[getattr(p, "product", p).id] for p in products]

    def category_keys(self, matches) -> list[str]:
        by_id = {c.id: key for key, c in self.categories.items()}
        return [by_id[m.product.category_id] for m in matches]

    def add(self, key: str, *, category: str, vector: np.ndarray, data: bytes | None = None, merchant=None) -> Product:
        """One more product with this vector (and these image bytes, for exact copies)."""
        product = ProductFactory(
            title=key.replace("_", " ").title(), slug=key.replace("_", "-"), category=self.categories[category],
            **({"merchant": merchant} if merchant else {}),
        )
        n = len(self.products) + 1
        image = ProductImageFactory(product=product, data=data) if data else ProductImageFactory(product=product, colour=(n * 37 % 256, n * 11 % 256, n * 5 % 256), pattern=n % 9 + 1)
        embeddings_store(images=[image], vectors=unit(vector)[None, :], model_name=settings.VISUALSEARCH_MODEL)
        self.products[key] = product
        return product


def build_interest_catalogue(seed: int = 3) -> InterestCatalogue:
    rng = np.random.default_rng(seed)
    footwear = CategoryFactory(name="Footwear", slug="footwear")
    shoes = CategoryFactory(name="Shoes", slug="footwear-shoes", parent=footwear)
    apparel = CategoryFactory(name="Apparel", slug="apparel")
    topwear = CategoryFactory(name="Topwear", slug="apparel-topwear", parent=apparel)
    accessories = CategoryFactory(name="Accessories", slug="accessories")
    bags = CategoryFactory(name="Bags", slug="accessories-bags", parent=accessories)
    categories = {
        "footwear": footwear, "shoes": shoes, "apparel": apparel, "topwear": topwear, "accessories": accessories, "bags": bags,
        "flats": CategoryFactory(name="Flats", slug="footwear-shoes-flats", parent=shoes),
        "sneakers": CategoryFactory(name="Sneakers", slug="footwear-shoes-sneakers", parent=shoes),
        "tshirts": CategoryFactory(name="Tshirts", slug="apparel-topwear-tshirts", parent=topwear),
        "kurtas": CategoryFactory(name="Kurtas", slug="apparel-topwear-kurtas", parent=topwear),
        "handbags": CategoryFactory(name="Handbags", slug="accessories-bags-handbags", parent=bags),
        "messenger": CategoryFactory(name="Messenger Bag", slug="accessories-bags-messenger-bag", parent=bags),
        "watches": CategoryFactory(name="Watches", slug="accessories-watches", parent=accessories),
    }
    centres = {key: unit(rng.normal(size=DIM)) for key in ("flats", "tshirts", "handbags", "sneakers", "watches")}
    centres["messenger"] = unit(centres["handbags"] + 0.6 * unit(rng.normal(size=DIM)))
    centres["kurtas"] = unit(centres["flats"] + centres["tshirts"] + centres["handbags"])
    catalogue = InterestCatalogue(products={}, categories=categories, centres=centres, rng=rng)
    MerchantFactory(name="Northwind")
    for prefix, (category, count) in SPECS.items():
        spread = 0.3 if category == "kurtas" else SPREAD
        for i in range(count):
            catalogue.add(f"{prefix}{i}", category=category, vector=centres[category] + spread * unit(rng.normal(size=DIM)))
    return catalogue
