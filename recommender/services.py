"""Writes of the recommender: the viewing history (session for visitors, rows for shoppers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from recommender import history
from recommender.models import ProductView
from shop.models import Product


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
