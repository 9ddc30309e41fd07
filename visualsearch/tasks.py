"""Thin Celery tasks: take ids, call the indexing service. Safe to run twice (the writes are
upserts and detection flags each pair once), so at-least-once delivery does no harm."""

from __future__ import annotations

from collections.abc import Sequence

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from config.enqueue import enqueue_on_commit
from visualsearch import indexing, looks, pipeline

# Tasks that write embeddings: redelivered if a worker dies, and retried when the database
# restarts or a connection drops (bad input is not worth retrying).
RETRIED = dict(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError, TimeoutError, OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)


@shared_task(**RETRIED)
def embed_images(self, image_ids: list[int], model_name: str | None = None) -> int:
    return indexing.images_embed(image_ids=image_ids, model_name=model_name).embedded


@shared_task(acks_late=True)
def embedding_sweep() -> int:
    return indexing.embedding_sweep()


def embedding_schedule(*, image_ids: Sequence[int]) -> None:
    """Enqueue embedding of ``image_ids`` once the current transaction commits.

    If the broker is unreachable the request still succeeds: the images stay dirty and
    the periodic sweep embeds them when the broker is back.
    """
    ids = list(image_ids)
    if ids:
        enqueue_on_commit(embed_images, ids, what=f"embedding of images {ids}", recovered_by="the sweep will retry")


@shared_task(**RETRIED)
def model_index(self, name: str) -> int:
    """Index a candidate model beside the active one, a chunk per run, until it is complete."""
    report = pipeline.model_index_build(name=name)
    if report.remaining and report.embedded:
        model_index.delay(name)  # more to do; a run that embedded nothing would loop on unreadable files
    return report.embedded


def model_index_schedule(*, name: str) -> None:
    """Enqueue ``model_index`` once the current transaction commits."""
    transaction.on_commit(lambda: model_index.delay(name))


@shared_task(acks_late=True)
def looks_expire() -> int:
    """Delete shop-the-look searches past their retention (the kept photos with them)."""
    return looks.looks_expire()
