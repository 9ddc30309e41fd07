"""Thin Celery tasks: take ids, call a service. Safe to run twice (the writes are upserts)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from visualsearch import services


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # A restarting database or a dropped connection is worth retrying; bad input is not.
    autoretry_for=(ConnectionError, TimeoutError, OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def embed_images(self, image_ids: list[int], model_name: str | None = None) -> int:
    result = services.images_embed(image_ids=image_ids, model_name=model_name)
    return result.embedded


@shared_task(acks_late=True)
def embedding_sweep() -> int:
    return services.embedding_sweep()
