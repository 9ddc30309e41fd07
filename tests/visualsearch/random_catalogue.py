"""A catalogue of random unit vectors in two categories, embedded and indexed: for the tests
of how searches are run (index or exact), where what the vectors look like does not matter."""

from __future__ import annotations

import numpy as np

from tests.factories import CategoryFactory, ProductFactory, ProductImageFactory
from visualsearch import index
from visualsearch.services import embeddings_store

MODEL = "efficientnet_lite0"
DIM = 1280


def random_indexed_catalogue(*, small: str, every: int, size: int, seed: int):
    """``size`` products, one image each; every ``every``-th in the category ``small``, the
    rest in "tops". Returns the images, their (unit) vectors and the small category."""
    rng = np.random.default_rng(seed)
    few, tops = CategoryFactory(name=small.title(), slug=small), CategoryFactory(name="Tops", slug="tops")
    images = [ProductImageFactory(product=ProductFactory(category=few if i % every == 0 else tops)) for i in range(size)]
    vectors = rng.standard_normal((len(images), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings_store(images=images, vectors=vectors, model_name=MODEL)
    index.embedding_index_ensure(model_name=MODEL, dim=DIM)
    return images, vectors, few
