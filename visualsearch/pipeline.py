"""Bulk embedding of the catalogue: decode, preprocess and fingerprint the next batches
in loader threads and write the previous batch's vectors in another while the model runs
on the current one, so the forward pass is rarely kept waiting.

PIL releases the GIL while it decodes and resizes, psycopg while it waits on the server,
and torch / ONNX Runtime while they convolve, so the threads overlap even on two cores
(measurements: ``docs/benchmarks.md``, "Embedding throughput" and "Inference backends").
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection, connections
from django.db.models import Exists, OuterRef
from django.utils import timezone

from shop.models import ProductImage
from visualsearch.embedding import load_embedder
from visualsearch.index import embedding_index_ensure, tables_analyze
from visualsearch.indexing import batch_store
from visualsearch.models import EmbeddingModel, ImageEmbedding
from visualsearch.reader import StoredImage, images_read
from visualsearch.selectors import active_model_name, model_missing_image_ids
from visualsearch.services import model_readiness

if TYPE_CHECKING:
    from visualsearch.embedding import Embedder

logger = logging.getLogger(__name__)

# One loader thread decodes, preprocesses and fingerprints an image in ~3.5 ms of CPU on a
# quiet core (docs/benchmarks.md, "Embedding throughput": decode 1,737 and preprocess 1,356
# images/s on one thread, the perceptual hashes the rest), i.e. ~280 images/s: more than
# the forward pass does per core (ONNX Runtime ~60, torch ~30 images/s per core at batch 8),
# so one loader keeps up with 4-8 inference threads. Loaders get the cores the forward
# pass leaves, at least one, so that the two never fight over a core: on the 2-core box
# that is one thread (the old pipeline's, which the forward loop waited on for 0.0-0.1 s
# per run of 480 images); a 16-core machine with 8 inference threads gets 8, more than it
# needs (an idle loader costs one prepared batch of memory). The cap bounds that memory.
MAX_LOADER_WORKERS = 8


def loader_workers(*, cores: int | None = None, inference_threads: int) -> int:
    """Loader threads for a machine with ``cores`` (default: this one's) whose forward pass
    runs ``inference_threads`` threads."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(MAX_LOADER_WORKERS, cores - inference_threads))


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
    backend: str = ""  # "onnx" or "torch"
    loader_workers: int = 1

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    @property
    def forward_images_per_second(self) -> float:
        return self.embedded / self.forward_seconds if self.forward_seconds else 0.0


@dataclass
class _Batch:
    rows: list[StoredImage]
    tensor: Any  # torch.Tensor (N, 3, S, S), or None
    failed: list[tuple[int, str]]
    fingerprints: list = field(default_factory=list)  # perceptual hashes, one per row


def images_to_embed(*, model_name: str, only_missing: bool, limit: int | None = None) -> list[StoredImage]:
    queryset = ProductImage.objects.order_by("id")
    if only_missing:
        queryset = queryset.filter(
            ~Exists(ImageEmbedding.objects.filter(image=OuterRef("pk"), model_name=model_name))
        )
    values = queryset.values_list("id", "product_id", "image")
    if limit:
        values = values[:limit]
    return [StoredImage(*row) for row in values]


def _load_batch(embedder: Embedder, rows: Sequence[StoredImage]) -> _Batch:
    # Here, not at the top: web processes import this module through the tasks and must
    # not pay torch's import (about a second and 300 MB) before they first embed a photo.
    import torch

    read = images_read(rows, prepare=embedder.preprocess)
    return _Batch(
        rows=read.images,
        tensor=torch.stack(read.inputs) if read.inputs else None,
        failed=read.failed,
        fingerprints=read.fingerprints,
    )


def _batches(rows: Sequence[StoredImage], size: int) -> Iterator[Sequence[StoredImage]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def catalog_embed(
    *,
    model_name: str | None = None,
    batch_size: int | None = None,
    only_missing: bool = False,
    limit: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    rows: Sequence[StoredImage] | None = None,
    detect_duplicates: bool = True,
    backend: str | None = None,
    workers: int | None = None,
) -> CatalogEmbedReport:
    """Embed catalogue images in batches and upsert them; each batch commits on its own,
    so an interrupted run resumes with ``only_missing=True``.

    Each batch is checked for duplicate listings after it is stored (on the writer thread,
    off the forward pass's path). ``detect_duplicates=False`` leaves that to one
    ``scan_duplicates`` afterwards, which uses the finished HNSW index: faster for a first
    import of a large catalogue.

    ``backend`` overrides the configured inference backend (benchmarks); ``workers`` the
    number of loader threads (default: ``loader_workers`` for this machine).
    """
    embedder = load_embedder(model_name or active_model_name(), backend=backend)
    size = batch_size or embedder.batch_size
    if rows is None:
        rows = images_to_embed(model_name=embedder.name, only_missing=only_missing, limit=limit)
    if workers is None:
        workers = loader_workers(inference_threads=embedder.cpu_threads)
    report = CatalogEmbedReport(
        model_name=embedder.name, device=embedder.device, batch_size=size, backend=embedder.backend,
        loader_workers=workers,
    )
    # A writer thread has its own connection, which cannot see rows of a transaction the
    # caller still holds open (tests, or a caller's atomic block): write inline then.
    threaded_writes = not connection.in_atomic_block
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed-loader") as loader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-writer") as writer,
    ):
        chunks = _batches(rows, size)
        # One batch in preparation per loader thread, taken in order: memory stays bounded
        # by (workers + 1) batches of tensors.
        pending: deque[Future] = deque(
            loader.submit(_load_batch, embedder, chunk) for chunk in itertools.islice(chunks, workers)
        )
        writing: Future | None = None
        while pending:
            t0 = time.perf_counter()
            batch = pending.popleft().result()
            report.wait_seconds += time.perf_counter() - t0
            chunk = next(chunks, None)
            if chunk is not None:
                pending.append(loader.submit(_load_batch, embedder, chunk))
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
                    writing = writer.submit(batch_store, **store)
                else:
                    batch_store(**store)
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
        tables_analyze()  # the next step (the duplicate scan, the first searches) plans on fresh statistics
    for image_id, reason in report.failed:
        logger.warning("Could not embed product image %s: %s", image_id, reason)
    return report


# Indexing a candidate model beside the active one ---------------------------------------

# Images per run of the background task: a run stays well inside the broker's visibility
# timeout (900 s; at ~30-120 images/s on 2 CPU cores this is 20-70 s) and the task
# re-enqueues itself until nothing is missing.
MODEL_INDEX_CHUNK = 2048


@dataclass
class ModelIndexReport:
    model_name: str
    embedded: int
    failed: list[tuple[int, str]]
    remaining: int  # images the active model has a vector for and this one still lacks
    complete: bool


def model_index_build(*, name: str, limit: int | None = MODEL_INDEX_CHUNK, on_progress=None) -> ModelIndexReport:
    """Embed up to ``limit`` images that ``name`` lacks (the bulk path, no duplicate check:
    detection reads the active model), then record whether its index is complete."""
    rows = images_to_embed(model_name=name, only_missing=True, limit=limit)
    report = catalog_embed(model_name=name, rows=rows, detect_duplicates=False, on_progress=on_progress) if rows else None
    remaining = len(model_missing_image_ids(model_name=name, reference=active_model_name()))
    complete = remaining == 0 and name != active_model_name() and model_readiness(name=name) is None
    if complete:
        EmbeddingModel.objects.filter(name=name, index_completed_at=None).update(index_completed_at=timezone.now())
    return ModelIndexReport(
        model_name=name,
        embedded=report.embedded if report else 0,
        failed=report.failed if report else [],
        remaining=remaining,
        complete=complete,
    )
