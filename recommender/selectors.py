"""Similar and recommended products, from the image embeddings of the active model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shop.filters import ProductFilters
from shop.models import Product
from visualsearch.duplicates.selectors import confirmed_duplicate_ids
from visualsearch.selectors import ProductMatch, active_model_name, product_search_by_vector, product_vectors

SIMILAR_DEFAULT_K = 12
RECOMMENDED_DEFAULT_K = 12
# The most recent views that shape "Recommended for you"; older ones have faded.
RECENT_VIEWS_USED = 10


def product_similar(*, product: Product, k: int = SIMILAR_DEFAULT_K, same_category: bool = False) -> list[ProductMatch]:
    """Active products that look most like ``product``, excluding itself and its confirmed duplicates.

    Empty when the product has no embedding yet (just uploaded, worker not done).
    """
    model_name = active_model_name()  # once: the product's vector and the search use the same model
    vector = product_vectors(product_ids=[product.id], model_name=model_name).get(product.id)
    if vector is None:
        return []
    filters = ProductFilters(category=product.category.slug) if same_category else None
    exclude = {product.id} | confirmed_duplicate_ids(product_id=product.id)
    return product_search_by_vector(vector=vector, k=k, filters=filters, exclude_product_ids=exclude, model_name=model_name)


def products_recommended(*, viewed_ids: Sequence[int], k: int = RECOMMENDED_DEFAULT_K) -> list[ProductMatch]:
    """Products nearest to what this visitor viewed recently, excluding what they have seen.

    The query is the normalised mean of the recent views' vectors, weighting later views
    more, so the strip follows the visitor's current interest rather than their first click.
    """
    recent = list(dict.fromkeys(viewed_ids))[-RECENT_VIEWS_USED:]
    model_name = active_model_name()
    vectors = product_vectors(product_ids=recent, model_name=model_name)
    present = [pid for pid in recent if pid in vectors]
    if not present:
        return []
    weights = np.linspace(1.0, 2.0, num=len(present), dtype=np.float32)
    query = np.average(np.stack([vectors[pid] for pid in present]), axis=0, weights=weights)
    norm = float(np.linalg.norm(query))
    if norm == 0.0:
        return []
    return product_search_by_vector(vector=query / norm, k=k, exclude_product_ids=set(viewed_ids), model_name=model_name)
