"""Embedding throughput: the ``embed_catalog`` pipeline against the model's bare forward pass.

For each batch size, on the same images: the forward pass alone on pre-made tensors
(``Embedder.embed_tensors``), decode + preprocess alone (one thread), and the real
pipeline (``visualsearch.pipeline.catalog_embed``: decode/preprocess thread, forward,
writer thread upserting into pgvector). The forward pass is timed before and after
the pipeline and averaged, because the box is shared and its speed drifts.

The pipeline re-embeds the first ``n`` product images of the database in place: the
vectors it writes are the ones already stored (same model, same files), so the demo
catalogue is unchanged apart from ``updated_at``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from visualsearch.embedding import load_embedder
from visualsearch.pipeline import catalog_embed, images_to_embed

# Batches run untimed before each forward-pass measurement (oneDNN picks its kernels).
WARMUP_BATCHES = 2
# The target: the pipeline keeps at least this share of the forward pass's speed.
PIPELINE_TARGET_RATIO = 0.90


def _decode(path_or_file) -> Image.Image:
    image = Image.open(path_or_file)
    image.load()
    return image


def forward_images_per_second(embedder, tensors: torch.Tensor, batch_size: int) -> float:
    """Images/s of ``embed_tensors`` over ``tensors`` in batches (after warm-up batches)."""
    for start in range(0, min(len(tensors), WARMUP_BATCHES * batch_size), batch_size):
        embedder.embed_tensors(tensors[start : start + batch_size])
    started = time.perf_counter()
    for start in range(0, len(tensors), batch_size):
        embedder.embed_tensors(tensors[start : start + batch_size])
    return len(tensors) / (time.perf_counter() - started)


def _accepts(fn, name: str) -> bool:
    import inspect

    return name in inspect.signature(fn).parameters


def throughput_bench(
    *,
    model_name: str | None,
    batch_sizes: Sequence[int],
    limit: int,
    fallback_paths: Sequence[str] = (),
    compare_without_duplicates: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Images/s per batch size; see the module docstring. Needs Django (the pipeline)."""
    from django.core.files.storage import default_storage


    embedder = load_embedder(model_name)
    # Only images whose file is there (a database restored without its media, or rows left
    # by other tools, must not stop the benchmark); the first ``limit`` of them by id.
    rows = [r for r in images_to_embed(model_name=embedder.name, only_missing=False) if default_storage.exists(r.name)][:limit]
    result: dict = {"model": embedder.name, "device": embedder.device, "images": 0, "torch_threads": torch.get_num_threads()}
    if rows:
        def opener(row):
            with default_storage.open(row.name, "rb") as handle:
                return _decode(handle)

        sources = list(rows)
        result["source"] = "product images in the database (the demo catalogue)"
    elif fallback_paths:
        opener = _decode
        sources = list(fallback_paths[:limit])
        result["source"] = "shared catalogue files (no product images in the database: pipeline skipped)"
    else:
        result["skipped"] = "no product images in the database and no shared data"
        return result
    result["images"] = len(sources)

    started = time.perf_counter()
    decoded = [opener(s) for s in sources]
    decode_seconds = time.perf_counter() - started
    started = time.perf_counter()
    tensors = torch.stack([embedder.preprocess(img) for img in decoded])
    preprocess_seconds = time.perf_counter() - started
    result["decode_images_per_second"] = len(sources) / decode_seconds
    result["preprocess_images_per_second"] = len(sources) / preprocess_seconds
    result["decode_preprocess_images_per_second"] = len(sources) / (decode_seconds + preprocess_seconds)
    log(
        f"  decode {result['decode_images_per_second']:.0f} images/s, preprocess "
        f"{result['preprocess_images_per_second']:.0f} images/s (one thread)"
    )

    result["by_batch"] = {}
    for batch_size in batch_sizes:
        row: dict = {"batch_size": batch_size}
        before = forward_images_per_second(embedder, tensors, batch_size)
        started = time.perf_counter()
        embedder.embed(decoded, batch_size=batch_size)
        row["embed_pil_images_per_second"] = len(decoded) / (time.perf_counter() - started)
        report = None
        if rows:
            try:
                report = catalog_embed(model_name=embedder.name, batch_size=batch_size, rows=rows)
            except Exception as exc:  # noqa: BLE001 - e.g. a migration not applied: report it, keep the rest
                row["pipeline_error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                log(f"  batch {batch_size}: pipeline failed: {row['pipeline_error']}")
        if report is not None:
            row["pipeline_images_per_second"] = report.images_per_second
            row["pipeline_forward_images_per_second"] = report.forward_images_per_second
            row["pipeline_wait_decode_seconds"] = report.wait_seconds
            row["pipeline_wait_db_seconds"] = report.store_seconds
            row["pipeline_seconds"] = report.seconds
            row["pipeline_failed"] = len(report.failed)
        if report is not None and compare_without_duplicates and _accepts(catalog_embed, "detect_duplicates"):
            # The same pipeline with the per-batch duplicate check off (the import path that
            # leaves it to one scan_duplicates afterwards): isolates that check's cost.
            bare = catalog_embed(model_name=embedder.name, batch_size=batch_size, rows=rows, detect_duplicates=False)
            row["pipeline_no_duplicates_images_per_second"] = bare.images_per_second
            row["pipeline_no_duplicates_forward_images_per_second"] = bare.forward_images_per_second
        after = forward_images_per_second(embedder, tensors, batch_size)
        row["forward_images_per_second_before"] = before
        row["forward_images_per_second_after"] = after
        row["forward_images_per_second"] = float(np.mean([before, after]))
        if report is not None:
            row["pipeline_to_forward_ratio"] = row["pipeline_images_per_second"] / row["forward_images_per_second"]
            row["meets_target"] = row["pipeline_to_forward_ratio"] >= PIPELINE_TARGET_RATIO
        if "pipeline_no_duplicates_images_per_second" in row:
            row["pipeline_no_duplicates_to_forward_ratio"] = (
                row["pipeline_no_duplicates_images_per_second"] / row["forward_images_per_second"]
            )
        result["by_batch"][str(batch_size)] = row
        log(
            f"  batch {batch_size}: forward {row['forward_images_per_second']:.1f} images/s"
            + (
                f", pipeline {row['pipeline_images_per_second']:.1f} images/s "
                f"({row['pipeline_to_forward_ratio']:.0%} of forward)"
                if report is not None
                else ""
            )
            + (
                f"; without the duplicate check {row['pipeline_no_duplicates_images_per_second']:.1f} images/s "
                f"({row['pipeline_no_duplicates_to_forward_ratio']:.0%})"
                if "pipeline_no_duplicates_images_per_second" in row
                else ""
            )
        )
    return result
