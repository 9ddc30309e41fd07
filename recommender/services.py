"""Writes of the recommender: the viewing history (session for visitors, rows for shoppers),
the precomputed "Complete the look" and similar strip of each product, and dropping the
cached similar strips."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from recommender import history, outfits
from recommender.models import ProductLook, ProductView, SimilarStrip
from recommender.selectors import SIMILAR_CACHE_GENERATION_KEY, SIMILAR_STRIP_CARDS, similar_strip_cards
from shop.models import Product, ProductImage
from shop.selectors import category_nodes
from visualsearch.duplicates.selectors import confirmed_duplicate_ids
from visualsearch.models import ImageEmbedding
from visualsearch.reader import DECODE_ERRORS, stored_image_open
from visualsearch.selectors import active_model_name, nearest_product_ids, product_vectors

logger = logging.getLogger(__name__)


def similar_cache_forget() -> None:
    """Invalidate every cached similar strip (in every process sharing the cache): after
    new vectors of the active model were stored."""
    cache.set(SIMILAR_CACHE_GENERATION_KEY, time.time_ns(), timeout=None)


def product_view_record(*, user, session, product_id: int) -> None:
    """Remember that this visitor opened ``product_id``'s page: a row for a signed-in user
    (kept across sessions), the session otherwise."""
    if user is not None and user.is_authenticated:
        product_views_store(user_id=user.pk, product_ids=[product_id])
    else:
        history.session_view_add(session=session, product_id=product_id)


def product_views_store(*, user_id: int, product_ids: Sequence[int], now=None) -> None:
    """Upsert one row per product for ``user_id``, the last of ``product_ids`` the most recent,
    then prune the user's history to ``history.MAX_REMEMBERED`` rows.

    Two queries whatever the history's size: the upsert (a re-view moves the row's time
    forward) and one ``DELETE`` of the rows past the limit through the (user, -viewed_at)
    index. Ids of deleted products are skipped.
    """
    ids = list(dict.fromkeys(reversed(product_ids)))[: history.MAX_REMEMBERED][::-1]  # last view of each, in order
    if not ids:
        return
    now = now or timezone.now()
    # A microsecond apart, so that the order survives when several are written at once (a merge).
    rows = [
        ProductView(user_id=user_id, product_id=pid, viewed_at=now - timedelta(microseconds=len(ids) - 1 - i))
        for i, pid in enumerate(ids)
    ]
    with transaction.atomic():
        if len(ids) > 1:  # a merge: the session may hold products deleted since
            existing = set(Product.objects.filter(id__in=ids).values_list("id", flat=True))
            rows = [row for row in rows if row.product_id in existing]
        ProductView.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["user", "product"], update_fields=["viewed_at"]
        )
        product_views_prune(user_id=user_id)


def product_views_prune(*, user_id: int, keep: int = history.MAX_REMEMBERED) -> int:
    """Delete all but ``user_id``'s ``keep`` most recent rows; return how many went."""
    recent = ProductView.objects.filter(user_id=user_id).order_by("-viewed_at", "-id").values("id")[:keep]
    deleted, _ = ProductView.objects.filter(user_id=user_id).exclude(id__in=recent).delete()
    return deleted


def history_merge_session(*, user, session) -> int:
    """On login: move what the visitor viewed before signing in into the user's history, as
    their most recent views, and empty the session's list. Returns how many were merged."""
    ids = history.session_history_pop(session=session)
    if ids:
        product_views_store(user_id=user.pk, product_ids=ids)
    return len(ids)


# Complete the look -----------------------------------------------------------------------


def product_looks_refresh(*, product_ids: Sequence[int]) -> int:
    """Compute and store "Complete the look" of each active product in ``product_ids`` from
    its primary photo with the active model; returns how many looks were written.

    Products not embedded yet are skipped (their embedding announces them again). A photo
    that cannot be read gets a look without regions, so that the sweep does not retry it
    every round; the product then borrows a neighbour's look. Safe to run twice: one row per
    product, overwritten.
    """
    model_name = active_model_name()
    products = {
        p.id: p for p in Product.objects.filter(id__in=set(product_ids), status=Product.Status.ACTIVE).select_related("category")
    }
    vectors = product_vectors(product_ids=list(products), model_name=model_name)
    if not vectors:
        return 0
    primary = _primary_image_names(product_ids=list(vectors))
    nodes = category_nodes()
    written = 0
    for product_id, vector in vectors.items():
        product = products[product_id]
        regions: list[outfits.LookRegion] = []
        name = primary.get(product_id)
        try:
            image = stored_image_open(name) if name else None
        except DECODE_ERRORS as exc:
            logger.warning("Cannot read the photo of product %s for its look: %s", product_id, exc)
            image = None
        if image is not None:
            exclude = {product_id} | confirmed_duplicate_ids(product_id=product_id)
            regions = outfits.look_regions(
                product=product, image=image, vector=vector, model_name=model_name, nodes=nodes, exclude_product_ids=exclude
            )
        ProductLook.objects.update_or_create(
            product_id=product_id,
            defaults={
                "model_name": model_name, "regions": [r.as_json() for r in regions], "has_look": bool(regions),
                "computed_at": timezone.now(),
            },
        )
        written += 1
    return written


def _primary_image_names(*, product_ids: Sequence[int]) -> dict[int, str]:
    """Each product's primary image file (lowest position), as ``product_vectors`` embeds it."""
    names: dict[int, str] = {}
    rows = ProductImage.objects.filter(product_id__in=product_ids).order_by("product_id", "position", "id")
    for product_id, name in rows.values_list("product_id", "image"):
        names.setdefault(product_id, name)
    return names


def _stale_product_ids(*, rows: type[ProductLook] | type[SimilarStrip], max_age: timedelta, limit: int) -> list[int]:
    """Active, embedded products whose precomputed row (one per product, with ``model_name``
    and ``computed_at``) is missing, from another model, or older than ``max_age``; never
    computed ones first."""
    model_name = active_model_name()
    fresh = rows.objects.filter(product_id=OuterRef("pk"), model_name=model_name, computed_at__gte=timezone.now() - max_age)
    embedded = ImageEmbedding.objects.filter(product_id=OuterRef("pk"), model_name=model_name)
    stale = (
        Product.objects.filter(status=Product.Status.ACTIVE)
        .filter(Exists(embedded))
        .exclude(Exists(fresh))
        .annotate(computed=Exists(rows.objects.filter(product_id=OuterRef("pk"))))
        .order_by("computed", "id")
    )
    return list(stale.values_list("id", flat=True)[:limit])


def looks_stale_product_ids(*, limit: int) -> list[int]:
    """Products whose look is missing, from another model, or older than ``outfits.LOOK_MAX_AGE``."""
    return _stale_product_ids(rows=ProductLook, max_age=outfits.LOOK_MAX_AGE, limit=limit)


def looks_sweep(*, batch_size: int | None = None) -> int:
    """Refresh up to ``batch_size`` stale looks (a lost task, a new model, an old look)."""
    ids = looks_stale_product_ids(limit=batch_size or settings.RECOMMENDER_LOOKS_SWEEP_BATCH)
    return product_looks_refresh(product_ids=ids) if ids else 0


# Similar strips -------------------------------------------------------------------------

# Neighbours of a newly embedded product whose strips it may enter: a product enters B's
# strip when it scores above B's last card, and then B is almost always among its own 50
# nearest (the sweep's age limit catches the rest).
SIMILAR_REVERSE_NEIGHBOURS = 50


def similar_strips_refresh(*, product_ids: Sequence[int]) -> int:
    """Compute and store the similar strip of each active, embedded product in
    ``product_ids`` with the active model; returns how many were written. Safe to run twice:
    one row per product, overwritten."""
    model_name = active_model_name()
    active = list(Product.objects.filter(id__in=set(product_ids), status=Product.Status.ACTIVE).values_list("id", flat=True))
    vectors = product_vectors(product_ids=active, model_name=model_name)
    now = timezone.now()
    strips = []
    for product_id, vector in vectors.items():
        cards = similar_strip_cards(product_id=product_id, vector=vector, model_name=model_name)
        # A strip short of cards holds the whole catalogue it can: any newcomer enters it.
        floor = cards[-1][2] if len(cards) >= SIMILAR_STRIP_CARDS else -1.0
        strips.append(SimilarStrip(product_id=product_id, model_name=model_name, cards=cards, floor=floor, computed_at=now))
    SimilarStrip.objects.bulk_create(
        strips, update_conflicts=True, unique_fields=["product"], update_fields=["model_name", "cards", "floor", "computed_at"]
    )
    return len(strips)


def similar_strips_after_embedding(*, product_ids: Sequence[int]) -> int:
    """Refresh the strips of newly embedded products and of the products whose strips they
    now belong in (their neighbours scoring above the strip's last card); returns how many
    strips were written."""
    model_name = active_model_name()
    vectors = product_vectors(product_ids=list(product_ids), model_name=model_name)
    best: dict[int, float] = {}  # each neighbour's highest score from any of the newcomers
    for product_id, vector in vectors.items():
        for hit_id, _, score in nearest_product_ids(
            vector=vector, k=SIMILAR_REVERSE_NEIGHBOURS, exclude_product_ids={product_id}, model_name=model_name
        ):
            best[hit_id] = max(score, best.get(hit_id, -1.0))
    # One read of the neighbours' floors for the whole batch (the sweep's batches hold 256 images).
    floors = SimilarStrip.objects.filter(product_id__in=list(best), model_name=model_name).values_list("product_id", "floor")
    affected = set(vectors) | {hit_id for hit_id, floor in floors if best[hit_id] > floor}
    return similar_strips_refresh(product_ids=sorted(affected)) if affected else 0


def similar_strips_stale_product_ids(*, limit: int) -> list[int]:
    """Products whose strip is missing, from another model, or older than
    ``RECOMMENDER_SIMILAR_MAX_AGE`` seconds."""
    return _stale_product_ids(rows=SimilarStrip, max_age=timedelta(seconds=settings.RECOMMENDER_SIMILAR_MAX_AGE), limit=limit)


def similar_strips_sweep(*, batch_size: int | None = None) -> int:
    """Refresh up to ``batch_size`` stale strips (a lost task, a new model, an old strip)."""
    ids = similar_strips_stale_product_ids(limit=batch_size or settings.RECOMMENDER_SIMILAR_SWEEP_BATCH)
    return similar_strips_refresh(product_ids=ids) if ids else 0
