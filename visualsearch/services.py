"""Writes to the vector store: one row per (product image, model), the canonical row of
each group of exact copies, and the images' dirty flags. What to embed and when
(``visualsearch.indexing``), and duplicate detection on what was stored
(``visualsearch.duplicates``), are their callers' business."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction

from shop.models import ProductImage
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name


def embeddings_canonical_elect(
    *, model_name: str, image_ids: Sequence[int] | None = None, shas: Sequence[str] = ()
) -> int:
    """Copy ``sha256`` from the images onto their embedding rows and keep exactly one
    canonical row per (model, bytes); return how many rows changed.

    With ``image_ids`` only those images' rows and the groups they leave or join are
    looked at, plus the groups ``shas`` (e.g. one whose canonical row was deleted); with
    neither, the whole model (``scan_duplicates`` repairs with it). An existing canonical
    row stays canonical, so a new copy never moves the HNSW node.

    No lock: two workers storing the same new bytes at the same moment may both elect
    their own row (neither sees the other's uncommitted one). That costs one extra index
    node until the next election of that group or a scan fixes it, and searches fold
    products anyway; a lock or a unique index would instead make every embedder wait on
    any open transaction holding the same bytes.
    """
    if image_ids is None and shas:
        image_ids = []
    table, images = ImageEmbedding._meta.db_table, ProductImage._meta.db_table
    image_filter, params = ("AND e.image_id = ANY(%s)", [list(image_ids)]) if image_ids is not None else ("", [])
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        select_shas = f"SELECT DISTINCT sha256 FROM {table} e WHERE e.model_name = %s {image_filter}"
        if image_ids is not None:
            cursor.execute(select_shas, [model_name, *params])
            groups = set(shas) | {row[0] for row in cursor.fetchall()}  # the groups these rows may leave
        # Rows whose bytes changed (or are new) join their group as non-canonical.
        cursor.execute(
            f"UPDATE {table} e SET sha256 = i.sha256, is_canonical = false FROM {images} i "
            f"WHERE i.id = e.image_id AND e.model_name = %s AND e.sha256 IS DISTINCT FROM i.sha256 {image_filter}",
            [model_name, *params],
        )
        changed += cursor.rowcount
        if image_ids is not None:
            cursor.execute(select_shas, [model_name, *params])
            groups |= {row[0] for row in cursor.fetchall()}  # and the groups they join
            group_filter, group_params = "AND sha256 = ANY(%s)", [sorted(groups)]
        else:
            group_filter, group_params = "", []
        # Keep the current canonical row of each group (or elect the oldest row); demote others.
        cursor.execute(
            f"WITH ranked AS (SELECT id, row_number() OVER (PARTITION BY sha256 ORDER BY is_canonical DESC, id) AS rank "
            f"FROM {table} WHERE model_name = %s AND sha256 <> '' {group_filter}) "
            f"UPDATE {table} e SET is_canonical = (ranked.rank = 1) FROM ranked "
            f"WHERE e.id = ranked.id AND e.is_canonical <> (ranked.rank = 1)",
            [model_name, *group_params],
        )
        changed += cursor.rowcount
    return changed


def embeddings_store(*, images: Sequence, vectors: np.ndarray, model_name: str) -> None:
    """Upsert one row per (image, model) and clear the images' dirty flags for the active model.

    ``images`` are rows with ``id`` and ``product_id`` (``ProductImage`` or
    ``visualsearch.reader.StoredImage``). ``ON CONFLICT ... DO UPDATE`` makes a re-delivered
    task or a re-run harmless. Rows of images with the same bytes share one canonical
    (indexed) row.
    """
    if not images:
        return
    dim = int(vectors.shape[1])
    rows = [
        ImageEmbedding(image_id=img.id, product_id=img.product_id, model_name=model_name, dim=dim, vector=vec)
        for img, vec in zip(images, vectors, strict=True)
    ]
    with transaction.atomic():
        ImageEmbedding.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["image", "model_name"],
            update_fields=["vector", "dim", "product", "updated_at"],
        )
        embeddings_canonical_elect(model_name=model_name, image_ids=[img.id for img in images])
        if model_name == active_model_name():
            ProductImage.objects.filter(id__in=[img.id for img in images], embedding_dirty=True).update(
                embedding_dirty=False
            )
