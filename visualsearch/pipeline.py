"""Bulk embedding of the catalogue: decode and preprocess the next batch in one thread
and write the previous batch's vectors in another while the model runs on the current
one, so the forward pass is rarely kept waiting.

PIL releases the GIL while it decodes and resizes, psycopg while it waits on the server,
and torch while it convolves, so the threads overlap well even on two cores. Measured on
the 2-core box with 2,296 catalogue images, batch 8: with the loader thread but inline
writes the pipeline ran at 21.1 images/s against 23.1 for the forward pass alone (91%),
DB writes taking 9.5 s of 109 s; the writer thread takes those off the critical path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.db.models import Exists, OuterRef
from PIL import Image

from shop.models import ProductImage
from visualsearch.duplicates.detection import fingerprint
from visualsearch.embedding import Embedder, load_embedder
from visualsearch.models import ImageEmbedding
from visualsearch.services import embedding_index_ensure, embeddings_store

logger = logging.getLogger(__name__)


@dataclass
class CatalogEmbedReport:
    model_name: str
    device: str
    batch_size: int
    embedded: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    forward_seconds: float = 0.0  # time inside the model's forward pass
    wait_seconds: float = 0.0  # time the model waited for the loader
    store_seconds: float = 0.0  # time the model waited for PostgreSQL writes

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    @property
    def forward_images_per_second(self) -> float:
        return self.embedded / self.forward_seconds if self.forward_seconds else 0.0


@dataclass(frozen=True)
class _Row:
    id: int
    product_id: int
    path: str


@dataclass
class _Batch:
    rows: list[_Row]
    tensor: torch.Tensor | None
    failed: list[tuple[int, str]]
    fingerprints: list = field(default_factory=list)  # perceptual hashes, one per row


def images_to_embed(*, model_name: str, only_missing: bool, limit: int | None = None) -> list[_Row]:
    queryset = ProductImage.objects.order_by("id")
    if only_missing:
        queryset = queryset.filter(
            ~Exists(ImageEmbedding.objects.filter(image=OuterRef("pk"), model_name=model_name))
        )
    values = queryset.values_list("id", "product_id", "image")
    if limit:
        values = values[:limit]
    return [_Row(*row) for row in values]


def _load_batch(embedder: Embedder, rows: Sequence[_Row]) -> _Batch:
    tensors, ok, failed, prints = [], [], [], []
    for row in rows:
        try:
            with default_storage.open(row.path, "rb") as handle:
                image = Image.open(handle)
                image.load()
            tensors.append(embedder.preprocess(image))
            prints.append(fingerprint(image))  # for duplicate detection, while the image is decoded
            ok.append(row)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            failed.append((row.id, f"{Path(row.path).name}: {exc}"))
    return _Batch(rows=ok, tensor=torch.stack(tensors) if tensors else None, failed=failed, fingerprints=prints)


def _batches(rows: Sequence[_Row], size: int) -> Iterator[Sequence[_Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def catalog_embed(
    *,
    model_name: str | None = None,
    batch_size: int | None = None,
    only_missing: bool = False,
    limit: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    rows: Sequence[_Row] | None = None,
    detect_duplicates: bool = True,
) -> CatalogEmbedReport:
    """Embed catalogue images in batches and upsert them; each batch commits on its own,
    so an interrupted run resumes with ``only_missing=True``.

    Each batch is checked for duplicate listings after it is stored (on the writer thread,
    off the forward pass's path). ``detect_duplicates=False`` leaves that to one
    ``scan_duplicates`` afterwards, which uses the finished HNSW index: faster for a first
    import of a large catalogue.
    """
    embedder = load_embedder(model_name)
    size = batch_size or embedder.batch_size
    if rows is None:
        rows = images_to_embed(model_name=embedder.name, only_missing=only_missing, limit=limit)
    report = CatalogEmbedReport(model_name=embedder.name, device=embedder.device, batch_size=size)
    # A writer thread has its own connection, which cannot see rows of a transaction the
    # caller still holds open (tests, or a caller's atomic block): write inline then.
    threaded_writes = not connection.in_atomic_block
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-loader") as loader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-writer") as writer,
    ):
        chunks = _batches(rows, size)
        pending = loader.submit(_load_batch, embedder, next(chunks, []))
        writing: Future | None = None
        while True:
            t0 = time.perf_counter()
            batch = pending.result()
            report.wait_seconds += time.perf_counter() - t0
            if not batch.rows and not batch.failed:
                break
            pending = loader.submit(_load_batch, embedder, next(chunks, []))
            report.failed.extend(batch.failed)
            if batch.tensor is not None:
                t0 = time.perf_counter()
                vectors = embedder.embed_tensors(batch.tensor)
                report.forward_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                if writing is not None:
                    writing.result()  # one batch in flight: bounded memory, errors surface
                store = {
                    "images": batch.rows,
                    "vectors": vectors,
                    "model_name": embedder.name,
                    "fingerprints": batch.fingerprints,
                    "detect_duplicates": detect_duplicates,
                }
                if threaded_writes:
                    writing = writer.submit(embeddings_store, **store)
                else:
                    embeddings_store(**store)
                report.store_seconds += time.perf_counter() - t0
                report.embedded += len(batch.rows)
            if on_progress:
                on_progress(len(batch.rows) + len(batch.failed))
        if writing is not None:
            writing.result()
        if threaded_writes:
            writer.submit(connections.close_all).result()
    report.seconds = time.perf_counter() - started
    if report.embedded:
        embedding_index_ensure(model_name=embedder.name, dim=embedder.dim)
    for image_id, reason in report.failed:
        logger.warning("Could not embed product image %s: %s", image_id, reason)
    return report
