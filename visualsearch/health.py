"""The index's health: drift between the catalogue and the stored embeddings, found
(``index_drift_find``, read-only) and repaired (``index_drift_repair``); ``manage.py
check_index`` runs both."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from shop.models import Product, ProductImage
from visualsearch import index
from visualsearch.embedding import load_embedder
from visualsearch.embedding.backbones import BACKBONES
from visualsearch.indexing import images_embed
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name
from visualsearch.services import embeddings_canonical_elect
from visualsearch.tasks import embedding_schedule


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
    table = ImageEmbedding._meta.db_table
    images, products = ProductImage._meta.db_table, Product._meta.db_table
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
        active = model_name == active_model_name()
        not_dirty = "NOT i.embedding_dirty AND" if active else ""
        has_row = f"EXISTS (SELECT 1 FROM {table} e WHERE e.image_id = i.id AND e.model_name = %s)"
        missing = ids(f"SELECT i.id FROM {images} i WHERE {not_dirty} NOT {has_row} ORDER BY i.id", [model_name])
        stuck, pending = [], []
        if active:
            stuck = ids(f"SELECT id FROM {images} WHERE embedding_dirty AND updated_at < %s ORDER BY id", [cutoff])
            pending = ids(f"SELECT id FROM {images} WHERE embedding_dirty AND updated_at >= %s ORDER BY id", [cutoff])
        stale = ids(
            f"SELECT i.id FROM {images} i JOIN {table} e ON e.image_id = i.id AND e.model_name = %s "
            f"WHERE {not_dirty} e.sha256 IS DISTINCT FROM i.sha256 ORDER BY i.id",
            [model_name],
        )
        orphan_image = ids(
            f"SELECT e.id FROM {table} e WHERE NOT EXISTS (SELECT 1 FROM {images} i WHERE i.id = e.image_id) ORDER BY e.id"
        )
        orphan_product = ids(
            f"SELECT e.id FROM {table} e WHERE NOT EXISTS (SELECT 1 FROM {products} p WHERE p.id = e.product_id) ORDER BY e.id"
        )
        wrong_product = ids(
            f"SELECT e.id FROM {table} e JOIN {images} i ON i.id = e.image_id "
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
            name = index.hnsw_index_name(model_name, dim)
            if not index.index_is_valid(name):
                index_missing = name
    return IndexDrift(
        model_name=model_name, dim=dim, missing=missing, stuck_dirty=stuck, pending=pending, stale=stale,
        orphan_image=orphan_image, orphan_product=orphan_product, wrong_product=wrong_product,
        dim_mismatch=dim_mismatch, canonical=canonical, index_missing=index_missing,
    )


@dataclass
class IndexRepairReport:
    deleted_rows: int = 0  # orphans and rows of the wrong dimension
    relinked_rows: int = 0  # rows pointed back at their image's product
    marked_dirty: int = 0
    embedded: int = 0
    enqueued: int = 0
    failed: list[tuple[int, str]] | None = None  # images whose file cannot be read
    canonical_changed: int = 0
    index_created: str | None = None


def index_drift_repair(*, drift, enqueue: bool = False, batch_size: int = 32, on_progress=None) -> IndexRepairReport:
    """Repair what ``index_drift_find`` found.

    Orphan rows and rows of the wrong dimension are deleted; rows pointing at another
    product than their image's are relinked; images needing a vector (missing, stuck
    dirty, stale, or whose row was just deleted) are marked dirty first, so the sweep
    still gets them if this run stops, then embedded here in batches (or, with
    ``enqueue``, sent to the workers); canonical rows are re-elected; a missing or
    invalid HNSW index is (re)built. Dirty flags belong to the active model: for another
    model (one being indexed beside it) images are embedded here without them, and
    ``enqueue`` is ignored (the workers embed with the active model).
    """
    report = IndexRepairReport(failed=[])
    table, images = ImageEmbedding._meta.db_table, ProductImage._meta.db_table
    model_name = drift.model_name
    active = model_name == active_model_name()
    reembed = set(drift.reembed_image_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        doomed = sorted(set(drift.orphan_image) | set(drift.orphan_product) | set(drift.dim_mismatch))
        if doomed:
            cursor.execute(
                f"SELECT image_id FROM {table} WHERE id = ANY(%s) AND model_name = %s", [doomed, model_name]
            )
            reembed |= {row[0] for row in cursor.fetchall()}
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [doomed])
            report.deleted_rows = cursor.rowcount
        if drift.wrong_product:
            cursor.execute(
                f"UPDATE {table} e SET product_id = i.product_id FROM {images} i "
                f"WHERE i.id = e.image_id AND e.id = ANY(%s) AND e.product_id <> i.product_id",
                [sorted(drift.wrong_product)],
            )
            report.relinked_rows = cursor.rowcount
        # Orphans' images are gone: only existing images can be marked and embedded.
        existing = set(ProductImage.objects.filter(id__in=reembed).values_list("id", flat=True))
        reembed &= existing
        if reembed and active:
            report.marked_dirty = ProductImage.objects.filter(id__in=reembed).update(embedding_dirty=True)
    ids = sorted(reembed)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        if enqueue and active:
            embedding_schedule(image_ids=chunk)  # autocommit here: sent at once
            report.enqueued += len(chunk)
        else:
            result = images_embed(image_ids=chunk, model_name=model_name)
            report.embedded += result.embedded
            report.failed.extend(result.failed)
        if on_progress:
            on_progress(len(chunk))
    if drift.canonical or doomed:
        report.canonical_changed = embeddings_canonical_elect(model_name=model_name)
    if drift.index_missing and drift.dim:
        # An invalid index (a failed concurrent build) is there but unused: rebuilt, not kept.
        report.index_created = index.embedding_index_rebuild(model_name=model_name, dim=drift.dim)
    return report
