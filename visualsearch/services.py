"""Writes for visual search: computing and storing embeddings, keeping indexes in place."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from PIL import Image

from shop.models import ProductImage
from visualsearch.embedding import load_embedder
from visualsearch.models import ImageEmbedding

logger = logging.getLogger(__name__)

def active_model_name() -> str:
    return settings.VISUALSEARCH_MODEL


def hnsw_index_name(model_name: str, dim: int) -> str:
    safe = "".join(ch if ch.isalnum() else "_" for ch in model_name.lower())
    # "_c": the index holds canonical rows only (one per distinct image bytes).
    return f"embedding_hnsw_{safe}_{dim}_c"[:63]


def _legacy_hnsw_index_name(model_name: str, dim: int) -> str:
    # Before exact copies shared one node: every row was indexed.
    safe = "".join(ch if ch.isalnum() else "_" for ch in model_name.lower())
    return f"embedding_hnsw_{safe}_{dim}"[:63]


def embedding_index_ensure(*, model_name: str, dim: int) -> str:
    """Create the partial HNSW index for ``model_name`` if it is missing; return its name.

    One index per model: ``vector`` has no fixed dimension, so each index casts it to
    ``halfvec(dim)`` and is limited to that model's rows. Queries must use the same
    expression (``visualsearch.selectors``). The existence check comes first because
    CREATE INDEX locks the table against writes even when the index is already there.
    """
    name = hnsw_index_name(model_name, dim)
    legacy = _legacy_hnsw_index_name(model_name, dim)
    table = ImageEmbedding._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL", [name, legacy])
        exists, legacy_exists = cursor.fetchone()
        if exists and not legacy_exists:
            return name
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED; PostgreSQL refuses to
        # build an index while deferred checks are pending in the transaction, so run
        # them now and go back to the initial (deferred) mode.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Only canonical rows: an exact copy listed under N products is one graph node, not
        # N identical ones (queries reach the copies through it, see selectors).
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING hnsw ((vector::halfvec({int(dim)})) halfvec_cosine_ops) "
            f"WITH (m = %s, ef_construction = %s) WHERE model_name = %s AND dim = %s AND is_canonical",
            [settings.VISUALSEARCH_HNSW_M, settings.VISUALSEARCH_HNSW_EF_CONSTRUCTION, model_name, int(dim)],
        )
        cursor.execute(f"DROP INDEX IF EXISTS {legacy}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return name


@dataclass(frozen=True)
class EmbedResult:
    embedded: int
    failed: list[tuple[int, str]]


def image_open(image: ProductImage) -> Image.Image:
    """Decode a stored product image fully (so a broken file fails here, with its id)."""
    with image.image.open("rb") as handle:
        pil = Image.open(handle)
        pil.load()
    return pil


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
    table = ImageEmbedding._meta.db_table
    image_filter, params = ("AND e.image_id = ANY(%s)", [list(image_ids)]) if image_ids is not None else ("", [])
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        select_shas = f"SELECT DISTINCT sha256 FROM {table} e WHERE e.model_name = %s {image_filter}"
        if image_ids is not None:
            cursor.execute(select_shas, [model_name, *params])
            groups = set(shas) | {row[0] for row in cursor.fetchall()}  # the groups these rows may leave
        # Rows whose bytes changed (or are new) join their group as non-canonical.
        cursor.execute(
            f"UPDATE {table} e SET sha256 = i.sha256, is_canonical = false FROM shop_productimage i "
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


def embeddings_store(
    *,
    images: Sequence[ProductImage],
    vectors: np.ndarray,
    model_name: str,
    fingerprints: Sequence | None = None,
    detect_duplicates: bool = True,
) -> None:
    """Upsert one row per (image, model) and clear the images' dirty flags for the active model.

    ``ON CONFLICT ... DO UPDATE`` makes a re-delivered task or a re-run harmless. Rows of
    images with the same bytes share one canonical (indexed) row. ``fingerprints``
    (``visualsearch.duplicates.detection.Fingerprint``, one per image, or None) are the
    perceptual hashes computed where the images were decoded; with ``detect_duplicates``
    (and the active model) the stored images are then compared with the catalogue and
    duplicate pairs flagged for review (``visualsearch.duplicates.services``).
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
        if fingerprints is not None:
            from visualsearch.duplicates.services import fingerprints_store

            fingerprints_store(
                fingerprints={img.id: fp for img, fp in zip(images, fingerprints, strict=True) if fp is not None}
            )
        if model_name == active_model_name():
            ProductImage.objects.filter(id__in=[img.id for img in images], embedding_dirty=True).update(
                embedding_dirty=False
            )
    if detect_duplicates and model_name == active_model_name():
        from visualsearch.duplicates.services import duplicates_detect

        # Its own transaction, after the vectors are committed: a failure here leaves the
        # embeddings in place, and a retried task detects again without creating anything twice.
        duplicates_detect(image_ids=[img.id for img in images], model_name=model_name)


def images_embed(*, image_ids: Iterable[int], model_name: str | None = None) -> EmbedResult:
    """Embed the given product images with ``model_name`` (default: active) and store them.

    Unknown ids are ignored (the image may have been deleted since it was enqueued);
    images that cannot be decoded are reported in ``failed`` (and logged).
    """
    embedder = load_embedder(model_name)
    ids = sorted(set(image_ids))
    images = list(ProductImage.objects.filter(id__in=ids).only("id", "product_id", "image"))
    from visualsearch.duplicates.detection import fingerprint

    decoded, ok_images, failed, prints = [], [], [], []
    for img in images:
        try:
            pil = image_open(img)
            prints.append(fingerprint(pil))  # the image is decoded here anyway
            decoded.append(pil)
            ok_images.append(img)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            logger.warning("Cannot embed product image %s: %s", img.id, exc)
            failed.append((img.id, str(exc)))
    if failed:
        # Stored files passed image_check on the way in, so this is a missing or damaged
        # file: retrying every sweep would not help and would starve the other dirty images.
        ProductImage.objects.filter(id__in=[i for i, _ in failed]).update(embedding_dirty=False)
    if ok_images:
        vectors = embedder.embed(decoded)
        embeddings_store(images=ok_images, vectors=vectors, model_name=embedder.name, fingerprints=prints)
        embedding_index_ensure(model_name=embedder.name, dim=embedder.dim)
    return EmbedResult(embedded=len(ok_images), failed=failed)


def images_schedule_embedding(*, image_ids: Sequence[int]) -> None:
    """Enqueue embedding of ``image_ids`` once the current transaction commits.

    If the broker is unreachable the request still succeeds: the images stay dirty and
    the periodic sweep embeds them when the broker is back.
    """
    ids = list(image_ids)
    if not ids:
        return

    def send() -> None:
        from visualsearch.tasks import embed_images

        try:
            embed_images.delay(ids)
        except Exception:  # noqa: BLE001 - any broker failure; the sweep recovers
            logger.exception("Could not enqueue embedding of images %s; the sweep will retry", ids)

    transaction.on_commit(send)


def dirty_image_ids(*, limit: int) -> list[int]:
    return list(
        ProductImage.objects.filter(embedding_dirty=True).order_by("id").values_list("id", flat=True)[:limit]
    )


def embedding_sweep(*, batch_size: int | None = None) -> int:
    """Embed up to ``batch_size`` dirty images; return how many were embedded."""
    ids = dirty_image_ids(limit=batch_size or settings.VISUALSEARCH_SWEEP_BATCH)
    if not ids:
        return 0
    return images_embed(image_ids=ids).embedded


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
    """Repair what ``visualsearch.selectors.index_drift_find`` found.

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
    table = ImageEmbedding._meta.db_table
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
                f"UPDATE {table} e SET product_id = i.product_id FROM shop_productimage i "
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
            images_schedule_embedding(image_ids=chunk)  # autocommit here: sent at once
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
        with connection.cursor() as cursor:
            # An invalid index (a failed concurrent build) is there but unused: drop it first.
            cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(drift.index_missing)}")
        report.index_created = embedding_index_ensure(model_name=model_name, dim=drift.dim)
    return report
