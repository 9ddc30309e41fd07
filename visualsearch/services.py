"""Writes to the vector store: one row per (product image, model), the canonical row of
each group of exact copies, the images' dirty flags, and the model lifecycle (which model
is active; index a candidate, promote it, roll back). What to embed and when
(``visualsearch.indexing``), and duplicate detection on what was stored
(``visualsearch.duplicates``), are their callers' business."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from shop.models import ProductImage
from visualsearch import events
from visualsearch.embedding import available_models
from visualsearch.index import hnsw_index_name, index_is_valid
from visualsearch.models import EmbeddingModel, ImageEmbedding, ModelActivation
from visualsearch.selectors import (
    active_model_forget,
    active_model_name,
    model_missing_image_ids,
)


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


# The model lifecycle -------------------------------------------------------------------


class ModelNotReady(Exception):
    """A model cannot be promoted (yet): the message says why, for the operator."""


def model_register(*, name: str) -> EmbeddingModel:
    """The registry row of ``name`` (an available embedding model), created as a candidate."""
    if name not in available_models():
        raise ModelNotReady(f"Unknown embedding model {name!r}; available: {', '.join(available_models())}.")
    model, _ = EmbeddingModel.objects.get_or_create(name=name)
    return model


def model_index_request(*, name: str) -> EmbeddingModel:
    """Ask the workers to index ``name`` beside the active model (``tasks.model_index``).

    From now on new images are embedded with it too (``selectors.models_kept_fresh``), so
    once the backlog is done it stays complete.
    """
    with transaction.atomic():
        model = model_register(name=name)
        if name == active_model_name():
            raise ModelNotReady(f"{name} is the active model already.")
        model.state = EmbeddingModel.State.CANDIDATE
        model.index_requested_at, model.index_completed_at = timezone.now(), None
        model.save(update_fields=["state", "index_requested_at", "index_completed_at", "updated_at"])
    return model


def model_readiness(*, name: str) -> str | None:
    """Why ``name`` cannot serve searches now, or None when it can: every image the active
    model has a vector for has one of ``name`` too, and its HNSW index is valid."""
    active = active_model_name()
    if name != active:
        missing = model_missing_image_ids(model_name=name, reference=active)
        if missing:
            return f"{len(missing)} images still lack a {name} vector; index it first (or wait for the workers)."
    dims = list(ImageEmbedding.objects.filter(model_name=name).values_list("dim", flat=True).distinct()[:2])
    if not dims:
        return f"{name} has no vectors yet."
    if len(dims) > 1:
        return f"{name} has vectors of several dimensions ({dims}); run check_index --fix --model {name}."
    if not index_is_valid(hnsw_index_name(name, dims[0])):
        return f"{name}'s HNSW index is missing or invalid; run check_index --fix --model {name}."
    return None


def _activate(*, name: str, actor, action: str) -> EmbeddingModel:
    active_model_forget()  # decide on the registry as it is, not on this process's cached view
    if reason := model_readiness(name=name):
        raise ModelNotReady(reason)
    with transaction.atomic():
        rows = {m.name: m for m in EmbeddingModel.objects.select_for_update().all()}
        previous_name = next((m.name for m in rows.values() if m.state == EmbeddingModel.State.ACTIVE), active_model_name())
        target = rows.get(name) or EmbeddingModel.objects.create(name=name)
        if previous_name == name:
            raise ModelNotReady(f"{name} is the active model already.")
        for row in rows.values():  # one standby at a time: the model being replaced
            if row.state == EmbeddingModel.State.STANDBY:
                row.state = EmbeddingModel.State.RETIRED
                row.save(update_fields=["state", "updated_at"])
        previous = rows.get(previous_name) or EmbeddingModel.objects.create(
            name=previous_name, index_requested_at=timezone.now(), index_completed_at=timezone.now()
        )
        previous.state = EmbeddingModel.State.STANDBY
        previous.save(update_fields=["state", "updated_at"])
        target.state, target.activated_at = EmbeddingModel.State.ACTIVE, timezone.now()
        target.index_completed_at = target.index_completed_at or timezone.now()
        target.save(update_fields=["state", "activated_at", "index_completed_at", "updated_at"])
        ModelActivation.objects.create(model=target, previous=previous, previous_name=previous_name, action=action, actor=actor)
        transaction.on_commit(active_model_forget)
        transaction.on_commit(
            lambda: events.active_model_changed.send(sender=model_promote, model_name=name, previous_name=previous_name),
            robust=True,  # the switch is done; a listener's failure must not undo it or hide it from the caller
        )
    active_model_forget()
    return target


def model_promote(*, name: str, actor=None) -> EmbeddingModel:
    """Make ``name`` the active model, atomically for searches; the one it replaces becomes
    the standby (kept fresh) so that ``model_rollback`` is instant. Refused with
    ``ModelNotReady`` until the model's index is complete."""
    return _activate(name=name, actor=actor, action=ModelActivation.Action.PROMOTE)


def model_rollback(*, actor=None) -> EmbeddingModel:
    """Make the model the last promotion replaced active again."""
    last = ModelActivation.objects.order_by("-at", "-id").first()
    if last is None or not last.previous_name:
        raise ModelNotReady("No promotion to roll back.")
    return _activate(name=last.previous_name, actor=actor, action=ModelActivation.Action.ROLLBACK)
