"""Thin Celery tasks for the recommender: take ids, call a service. Safe to run twice (a
product's look and its similar strip are one row each, overwritten)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import shared_task

from config.enqueue import enqueue_on_commit
from recommender import services
from visualsearch.tasks import RETRIED


@shared_task(**RETRIED)
def product_looks_refresh(self, product_ids: list[int]) -> int:
    return services.product_looks_refresh(product_ids=product_ids)


@shared_task(acks_late=True)
def looks_sweep() -> int:
    return services.looks_sweep()


def looks_schedule(*, product_ids: Sequence[int]) -> None:
    """Enqueue "Complete the look" of ``product_ids`` once the current transaction commits.
    A broker failure loses nothing: the sweep computes missing looks."""
    ids = list(dict.fromkeys(product_ids))
    if ids:
        enqueue_on_commit(product_looks_refresh, ids, what=f"the looks of products {ids}", recovered_by="the sweep will compute them")


@shared_task(**RETRIED)
def similar_strips_after_embedding(self, product_ids: list[int]) -> int:
    return services.similar_strips_after_embedding(product_ids=product_ids)


@shared_task(acks_late=True)
def similar_strips_sweep() -> int:
    return services.similar_strips_sweep()


# Strips rewritten per catch-up task after the active model changed: 5.5 ms each, so ~3 s a
# task; it enqueues itself again while strips of another model are left (3,000 demo products:
# 6 tasks, ~16 s in all, instead of 15 minutes of 5-minute sweeps).
CATCH_UP_BATCH = 500


@shared_task(acks_late=True)
def similar_strips_catch_up() -> int:
    written = services.similar_strips_sweep(batch_size=CATCH_UP_BATCH)
    if written >= CATCH_UP_BATCH:
        similar_strips_catch_up_schedule()
    return written


def similar_strips_catch_up_schedule() -> None:
    """Rebuild every similar strip for the active model in the background, a batch per task."""
    enqueue_on_commit(similar_strips_catch_up, what="the similar strips' rebuild", recovered_by="the sweep will rebuild them")


def similar_strips_schedule(*, product_ids: Sequence[int]) -> None:
    """Enqueue the similar strips touched by newly embedded ``product_ids`` once the current
    transaction commits. A broker failure loses nothing: the sweep refreshes old strips."""
    ids = list(dict.fromkeys(product_ids))
    if ids:
        enqueue_on_commit(
            similar_strips_after_embedding, ids, what=f"the similar strips of products {ids}", recovered_by="the sweep will refresh them"
        )
