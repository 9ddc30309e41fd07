"""Nearest-neighbour reads over the embeddings, through the per-model HNSW index."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from pgvector import HalfVector

from shop.models import Category, Product
from shop.selectors import category_descendant_ids, product_get_by_ids
from visualsearch.models import ImageEmbedding

# Each product can have several images; asking the index for a few more rows than k
# leaves room to fold them into one hit per product.
IMAGES_PER_PRODUCT_HEADROOM = 3


@dataclass(frozen=True)
class SearchFilters:
    category: str | None = None  # slug; descendants match too
    gender: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    merchant: str | None = None  # slug


@dataclass(frozen=True)
class ProductMatch:
    product: Product
    score: float  # cosine similarity in [-1, 1]; 1 is identical
    image_id: int


def _filter_sql(filters: SearchFilters) -> tuple[list[str], list]:
    clauses, params = ["p.status = %s"], [Product.Status.ACTIVE]
    if filters.category:
        category = Category.objects.filter(slug=filters.category).first()
        ids = category_descendant_ids(category=category) if category else []
        clauses.append("p.category_id = ANY(%s)")
        params.append(ids)
    if filters.gender:
        clauses.append("p.gender = %s")
        params.append(filters.gender)
    if filters.min_price is not None:
        clauses.append("p.price >= %s")
        params.append(filters.min_price)
    if filters.max_price is not None:
        clauses.append("p.price <= %s")
        params.append(filters.max_price)
    if filters.merchant:
        clauses.append("p.merchant_id = (SELECT id FROM shop_merchant WHERE slug = %s)")
        params.append(filters.merchant)
    return clauses, params


_SEARCH_SETTINGS_SQL = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)"
)


def _execute_with_search_settings(cursor, sql: str, params: list) -> None:
    """Run ``sql`` after the transaction-local HNSW settings (set_config(..., true) == SET LOCAL),
    in one round trip when the connection binds parameters client-side (Django's default
    with psycopg 3), else in two. The caller's transaction scopes the settings."""
    ef_search = str(settings.VISUALSEARCH_HNSW_EF_SEARCH)
    raw = getattr(cursor, "cursor", cursor)
    try:
        from psycopg import ClientCursor
    except ImportError:  # pragma: no cover - psycopg 3 is in requirements.txt
        ClientCursor = ()  # noqa: N806
    if isinstance(raw, ClientCursor):
        cursor.execute(f"{_SEARCH_SETTINGS_SQL}; {sql}", [ef_search, *params])
        cursor.nextset()  # the rows of the second statement
    else:
        cursor.execute(_SEARCH_SETTINGS_SQL, [ef_search])
        cursor.execute(sql, params)


def nearest_product_ids(
    *,
    vector: np.ndarray,
    k: int,
    filters: SearchFilters | None = None,
    exclude_product_ids: Collection[int] = (),
    model_name: str | None = None,
) -> list[tuple[int, int, float]]:
    """(product_id, image_id, cosine similarity) of the ``k`` nearest products, best first.

    Products whose image is an exact copy of another product's are found through the
    copies' shared (canonical) index row, at the same similarity.

    Runs in its own transaction so that ``SET LOCAL`` turns on pgvector 0.8's iterative
    index scan for this query only: with a selective filter (a category holding 2% of the
    catalogue), a plain HNSW scan stops after ``ef_search`` candidates and returns fewer
    than ``k`` rows; the iterative scan keeps walking the graph until ``k`` rows pass.
    """
    model_name = model_name or settings.VISUALSEARCH_MODEL
    dim = int(vector.shape[-1])
    clauses, params = _filter_sql(filters or SearchFilters())
    if exclude_product_ids:
        clauses.append("NOT (p.id = ANY(%s))")
        params.append(list(exclude_product_ids))
    where = " AND ".join(clauses)
    table = ImageEmbedding._meta.db_table
    limit = k * IMAGES_PER_PRODUCT_HEADROOM
    # Text form: psycopg has no adapter for HalfVector objects unless register_vector() ran.
    query = HalfVector(np.asarray(vector, dtype=np.float32)).to_text()
    # Only canonical rows are in the HNSW index: one per distinct image bytes. A canonical
    # row qualifies when its own product passes the filters or, for a photo listed under
    # several products, when one of its copies does; the copies are then read separately.
    sql = (
        f"SELECT e.product_id, e.image_id, (e.vector::halfvec({dim})) <=> %s::halfvec({dim}) AS distance, "
        f"CASE WHEN e.sha256 <> '' AND EXISTS (SELECT 1 FROM {table} c WHERE c.model_name = e.model_name "
        f"AND c.sha256 = e.sha256 AND c.id <> e.id) THEN e.sha256 END AS copies_of "
        f"FROM {table} e "
        f"WHERE e.model_name = %s AND e.dim = %s AND e.is_canonical AND ("
        f"EXISTS (SELECT 1 FROM shop_product p WHERE p.id = e.product_id AND {where}) "
        f"OR (e.sha256 <> '' AND EXISTS (SELECT 1 FROM {table} c JOIN shop_product p ON p.id = c.product_id "
        f"WHERE c.model_name = e.model_name AND c.sha256 = e.sha256 AND c.id <> e.id AND {where}))) "
        f"ORDER BY distance LIMIT %s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _execute_with_search_settings(cursor, sql, [query, model_name, dim, *params, *params, limit])
        rows = cursor.fetchall()
        shared = {row[3]: float(row[2]) for row in rows if row[3] is not None}
        if shared:
            # Every product holding one of those photos and passing the filters, at the same distance.
            cursor.execute(
                f"SELECT c.product_id, c.image_id, c.sha256 FROM {table} c JOIN shop_product p ON p.id = c.product_id "
                f"WHERE c.model_name = %s AND c.sha256 = ANY(%s) AND {where}",
                [model_name, list(shared), *params],
            )
            rows = [row for row in rows if row[3] is None] + [
                (product_id, image_id, shared[sha], sha) for product_id, image_id, sha in cursor.fetchall()
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
    filters: SearchFilters | None = None,
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
    model_name = model_name or settings.VISUALSEARCH_MODEL
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


def confirmed_duplicate_ids(*, product_id: int) -> set[int]:
    """Products a merchandiser confirmed as duplicates of ``product_id`` (the review queue)."""
    from visualsearch.duplicates.selectors import confirmed_duplicate_ids as confirmed

    return confirmed(product_id=product_id)


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


# A box smaller than this holds too little of the garment for the CNN to see anything.
MIN_BOX_SIDE = 16


class BadBox(ValueError):
    pass


def photo_embed(*, image, box: Box | None = None, model_name: str | None = None) -> np.ndarray:
    """Embed an uploaded photo (a PIL image), cropped to ``box`` when given."""
    from PIL import ImageOps

    from visualsearch.embedding import load_embedder

    image = ImageOps.exif_transpose(image)
    if box is not None:
        crop = box.clamp_to(*image.size)
        if crop is None:
            raise BadBox(
                f"The box must overlap the photo ({image.size[0]}x{image.size[1]} pixels) "
                f"by at least {MIN_BOX_SIDE}x{MIN_BOX_SIDE} pixels."
            )
        image = image.crop(crop)
    return load_embedder(model_name).embed([image])[0]


def product_search_by_photo(
    *, image, k: int, box: Box | None = None, filters: SearchFilters | None = None
) -> list[ProductMatch]:
    """Shop the look: the ``k`` active products that look most like the photo (or the boxed part)."""
    return product_search_by_vector(vector=photo_embed(image=image, box=box), k=k, filters=filters)


# Index drift (``manage.py check_index``) ------------------------------------------------


@dataclass
class IndexDrift:
    """What differs between the catalogue and the embeddings of one model.

    Image and embedding ids, by kind. ``pending`` (dirty images younger than the grace
    period: the workers or the sweep will get to them) is information, not drift; every
    other non-empty list is drift. See ``index_drift_find``.
    """

    model_name: str
    dim: int | None
    missing: list[int]  # images with no embedding for the model and no dirty flag: nothing will embed them
    stuck_dirty: list[int]  # images dirty for longer than the grace period: the sweep is not running or failing
    pending: list[int]  # images dirty within the grace period (not drift)
    stale: list[int]  # images whose embedding was computed from other bytes (sha256 differs), not dirty
    orphan_image: list[int]  # embeddings (any model) whose image is gone
    orphan_product: list[int]  # embeddings (any model) whose product is gone
    wrong_product: list[int]  # embeddings whose product is not their image's product (denormalised copy drifted)
    dim_mismatch: list[int]  # embeddings whose stored or actual dimension is not their model's
    canonical: list[str]  # sha256 groups of the model with no canonical row or more than one
    index_missing: str | None  # the HNSW index that should exist and does not (or is invalid)

    DRIFT_KINDS = (
        "missing", "stuck_dirty", "stale", "orphan_image", "orphan_product", "wrong_product", "dim_mismatch",
        "canonical", "index_missing",
    )

    def counts(self) -> dict[str, int]:
        out = {}
        for kind in (*self.DRIFT_KINDS, "pending"):
            value = getattr(self, kind)
            out[kind] = (1 if value else 0) if kind == "index_missing" else len(value)
        return out

    @property
    def total(self) -> int:
        counts = self.counts()
        return sum(counts[kind] for kind in self.DRIFT_KINDS)

    @property
    def reembed_image_ids(self) -> list[int]:
        """Images of the model that need a (new) vector."""
        return sorted(set(self.missing) | set(self.stuck_dirty) | set(self.stale))


def model_dimension(*, model_name: str) -> int | None:
    """The output dimension of a model (imports torch): a backbone's from its spec, a
    fine-tuned one's by loading it; None when it cannot be loaded here."""
    from visualsearch.embedding import load_embedder
    from visualsearch.embedding.backbones import BACKBONES

    spec = BACKBONES.get(model_name)
    if spec:
        return spec.dim
    try:
        return load_embedder(model_name).dim
    except Exception:  # noqa: BLE001 - unknown name, missing weights: the dimension checks are skipped
        return None


def index_drift_find(*, model_name: str, grace_seconds: int = 600) -> IndexDrift:
    """Compare the catalogue with the stored embeddings (read-only).

    Image-side checks (missing, dirty, stale) are for ``model_name`` (the active model by
    default in ``check_index``); row-side checks (orphans, wrong product, dimensions) cover
    every model's rows, since a broken row of a model being re-indexed is broken too.
    """
    import json
    from datetime import timedelta

    from django.utils import timezone

    from visualsearch.services import hnsw_index_name

    from visualsearch.embedding.backbones import BACKBONES

    table = ImageEmbedding._meta.db_table
    dim = model_dimension(model_name=model_name)
    known_dims = {name: spec.dim for name, spec in BACKBONES.items()}
    if dim:
        known_dims[model_name] = dim
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    with connection.cursor() as cursor:

        def ids(sql: str, params: Sequence = ()) -> list:
            cursor.execute(sql, list(params))
            return [row[0] for row in cursor.fetchall()]

        # The dirty flag belongs to the active model: for another one, every image without a
        # row is missing, and nothing is pending.
        active = model_name == settings.VISUALSEARCH_MODEL
        not_dirty = "NOT i.embedding_dirty AND" if active else ""
        has_row = f"EXISTS (SELECT 1 FROM {table} e WHERE e.image_id = i.id AND e.model_name = %s)"
        missing = ids(f"SELECT i.id FROM shop_productimage i WHERE {not_dirty} NOT {has_row} ORDER BY i.id", [model_name])
        stuck, pending = [], []
        if active:
            stuck = ids("SELECT id FROM shop_productimage WHERE embedding_dirty AND updated_at < %s ORDER BY id", [cutoff])
            pending = ids("SELECT id FROM shop_productimage WHERE embedding_dirty AND updated_at >= %s ORDER BY id", [cutoff])
        stale = ids(
            f"SELECT i.id FROM shop_productimage i JOIN {table} e ON e.image_id = i.id AND e.model_name = %s "
            f"WHERE {not_dirty} e.sha256 IS DISTINCT FROM i.sha256 ORDER BY i.id",
            [model_name],
        )
        orphan_image = ids(
            f"SELECT e.id FROM {table} e WHERE NOT EXISTS (SELECT 1 FROM shop_productimage i WHERE i.id = e.image_id) ORDER BY e.id"
        )
        orphan_product = ids(
            f"SELECT e.id FROM {table} e WHERE NOT EXISTS (SELECT 1 FROM shop_product p WHERE p.id = e.product_id) ORDER BY e.id"
        )
        wrong_product = ids(
            f"SELECT e.id FROM {table} e JOIN shop_productimage i ON i.id = e.image_id "
            f"WHERE e.product_id <> i.product_id ORDER BY e.id"
        )
        # The dim column against the vector itself, and against the model's known output size.
        dim_mismatch = ids(
            f"SELECT e.id FROM {table} e WHERE e.dim <> vector_dims(e.vector) "
            f"OR e.dim <> COALESCE((%s::jsonb ->> e.model_name)::int, e.dim) ORDER BY e.id",
            [json.dumps(known_dims)],
        )
        canonical = ids(
            f"SELECT sha256 FROM {table} WHERE model_name = %s AND sha256 <> '' "
            f"GROUP BY sha256 HAVING count(*) FILTER (WHERE is_canonical) <> 1 ORDER BY sha256",
            [model_name],
        )
        index_missing = None
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE model_name = %s)", [model_name])
        if dim and cursor.fetchone()[0]:
            name = hnsw_index_name(model_name, dim)
            cursor.execute(
                "SELECT x.indisvalid FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid "
                "WHERE c.relname = %s AND c.relkind = 'i'",
                [name],
            )
            row = cursor.fetchone()
            if row is None or not row[0]:
                index_missing = name
    return IndexDrift(
        model_name=model_name, dim=dim, missing=missing, stuck_dirty=stuck, pending=pending, stale=stale,
        orphan_image=orphan_image, orphan_product=orphan_product, wrong_product=wrong_product,
        dim_mismatch=dim_mismatch, canonical=canonical, index_missing=index_missing,
    )
