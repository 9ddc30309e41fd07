"""Nearest-neighbour reads over the embeddings, through the per-model HNSW index."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from shop.filters import ProductFilters, products_matching
from shop.models import Product
from shop.selectors import product_get_by_ids
from visualsearch import index
from visualsearch.models import ImageEmbedding

# Each product can have several images; asking the index for a few more rows than k
# leaves room to fold them into one hit per product.
IMAGES_PER_PRODUCT_HEADROOM = 3


def active_model_name() -> str:
    """The embedding model that searches read and the workers index."""
    return settings.VISUALSEARCH_MODEL


@dataclass(frozen=True)
class ProductMatch:
    product: Product
    score: float  # cosine similarity in [-1, 1]; 1 is identical
    image_id: int


def _nearest_rows_query(*, vector: np.ndarray, dim: int, model_name: str, filters: ProductFilters, exclude: Collection[int], limit: int):
    """The canonical index rows nearest to ``vector`` whose product, or one of whose exact
    copies' products, passes ``filters``; ordered by the indexed distance."""
    passing = products_matching(filters)
    if exclude:
        passing = passing.exclude(id__in=list(exclude))
    copies = ImageEmbedding.objects.filter(model_name=OuterRef("model_name"), sha256=OuterRef("sha256")).exclude(
        id=OuterRef("id")
    )
    return (
        ImageEmbedding.objects.filter(index.index_predicate(model_name, dim))
        .filter(
            Exists(passing.filter(id=OuterRef("product_id")))
            | (~Q(sha256="") & Exists(copies.filter(product__in=passing)))
        )
        .annotate(
            distance=index.cosine_distance(dim, vector),
            # Set when other rows hold the same bytes: their products are read separately.
            has_copies=Exists(copies),
        )
        .order_by("distance")
        .values_list("product_id", "image_id", "distance", "sha256", "has_copies")[:limit]
    )


def nearest_product_ids(
    *,
    vector: np.ndarray,
    k: int,
    filters: ProductFilters | None = None,
    exclude_product_ids: Collection[int] = (),
    model_name: str | None = None,
) -> list[tuple[int, int, float]]:
    """(product_id, image_id, cosine similarity) of the ``k`` nearest products, best first.

    Products whose image is an exact copy of another product's are found through the
    copies' shared (canonical) index row, at the same similarity.

    Runs in its own transaction so that the HNSW search settings (``visualsearch.index``)
    apply to this query only: with a selective filter (a category holding 2% of the
    catalogue) a plain HNSW scan stops after ``ef_search`` candidates and returns fewer
    than ``k`` rows; the iterative scan keeps walking the graph until ``k`` rows pass.
    """
    model_name = model_name or active_model_name()
    filters = filters or ProductFilters()
    dim = int(vector.shape[-1])
    query = _nearest_rows_query(
        vector=vector, dim=dim, model_name=model_name, filters=filters, exclude=exclude_product_ids,
        limit=k * IMAGES_PER_PRODUCT_HEADROOM,
    )
    sql, params = query.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        index.execute_search(cursor, sql, list(params))
        rows = [(pid, iid, float(distance), sha if has_copies else None) for pid, iid, distance, sha, has_copies in cursor.fetchall()]
    shared = {sha: distance for _, _, distance, sha in rows if sha is not None}
    if shared:
        # Every product holding one of those photos and passing the filters, at the same distance.
        passing = products_matching(filters).exclude(id__in=list(exclude_product_ids))
        copies = ImageEmbedding.objects.filter(model_name=model_name, sha256__in=list(shared), product__in=passing)
        rows = [row for row in rows if row[3] is None] + [
            (product_id, image_id, shared[sha], sha) for product_id, image_id, sha in copies.values_list("product_id", "image_id", "sha256")
        ]
    # relaxed_order may return rows slightly out of order: sort, then keep each product's best image.
    best: dict[int, tuple[int, int, float]] = {}
    for product_id, image_id, distance, _ in sorted(rows, key=lambda r: (r[2], r[0])):
        if product_id not in best:
            best[product_id] = (product_id, image_id, 1.0 - float(distance))
    return list(best.values())[:k]


def product_search_by_vector(
    *,
    vector: np.ndarray,
    k: int,
    filters: ProductFilters | None = None,
    exclude_product_ids: Collection[int] = (),
    model_name: str | None = None,
) -> list[ProductMatch]:
    """The ``k`` active products nearest to ``vector``, loaded with images, best first."""
    hits = nearest_product_ids(
        vector=vector, k=k, filters=filters, exclude_product_ids=exclude_product_ids, model_name=model_name
    )
    products = {p.id: p for p in product_get_by_ids(ids=[h[0] for h in hits])}
    return [ProductMatch(product=products[pid], score=score, image_id=iid) for pid, iid, score in hits if pid in products]


def product_vectors(*, product_ids: Sequence[int], model_name: str | None = None) -> dict[int, np.ndarray]:
    """Each product's primary-image vector (lowest position) for the model, as float32."""
    model_name = model_name or active_model_name()
    rows = (
        ImageEmbedding.objects.filter(product_id__in=list(product_ids), model_name=model_name)
        .order_by("product_id", "image__position", "image_id")
        .values_list("product_id", "vector")
    )
    vectors: dict[int, np.ndarray] = {}
    for product_id, vector in rows:
        if product_id not in vectors:
            vectors[product_id] = np.asarray(vector.to_numpy(), dtype=np.float32)
    return vectors
