"""Thin Celery tasks for the recommender: take ids, call a service. Safe to run twice (a
product's look is one row, overwritten)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import shared_task
from django.db import transaction

from recommender import services
from visualsearch.tasks import RETRIED

logger = logging.getLogger(__name__)


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
    if not ids:
        return

    def send() -> None:
        try:
            product_looks_refresh.delay(ids)
        except Exception:  # noqa: BLE001 - any broker failure; the sweep recovers
            logger.exception("Could not enqueue the looks of products %s; the sweep will compute them", ids)

    transaction.on_commit(send)
