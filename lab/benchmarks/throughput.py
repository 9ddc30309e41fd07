"""Embedding throughput: the inference backends side by side, and the ``embed_catalog``
pipeline against the bare forward pass.

* Backends: torch eager and ONNX Runtime (``visualsearch.embedding.onnx_backend``) on the
  same pre-made tensors, batch by batch, in alternating runs (torch, ONNX, torch, ONNX ...)
  so that a shared box's drift hits both alike; medians of the runs, and the median of the
  ratios of back-to-back pairs.
* Pipeline, per backend: the forward pass alone on pre-made tensors
  (``Embedder.embed_tensors``), decode + preprocess alone (one thread), and the real
  pipeline (``visualsearch.pipeline.catalog_embed``: loader threads, forward, writer thread
  upserting into pgvector). The forward pass is timed before and after the pipeline and
  averaged, because the box is shared and its speed drifts.

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
BACKENDS = ("torch", "onnx")
# Alternating timed runs per backend and batch size, and the images in each: 5 x 64 keeps
# the side-by-side table under a minute at torch's ~30 images/s on the shared 2-core box.
SIDE_BY_SIDE_RUNS = 5
SIDE_BY_SIDE_IMAGES = 64


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


def backends_side_by_side(
    embedders: dict, tensors: torch.Tensor, batch_sizes: Sequence[int], *, runs: int = SIDE_BY_SIDE_RUNS,
    log: Callable[[str], None] = print,
) -> dict:
    """Images/s of each backend per batch size: medians of ``runs`` alternating runs."""
    out: dict = {}
    for batch_size in batch_sizes:
        timings: dict[str, list[float]] = {name: [] for name in embedders}
        for _ in range(runs):
            for name, embedder in embedders.items():
                timings[name].append(forward_images_per_second(embedder, tensors, batch_size))
        row: dict = {"batch_size": batch_size, "runs": runs, "images_per_run": len(tensors)}
        for name, values in timings.items():
            row[name] = {"median": float(np.median(values)), "min": min(values), "max": max(values), "runs": values}
        if {"torch", "onnx"} <= set(timings):
            row["onnx_to_torch_median_ratio"] = row["onnx"]["median"] / row["torch"]["median"]
            row["onnx_to_torch_paired_ratio"] = float(np.median(np.divide(timings["onnx"], timings["torch"])))
        out[str(batch_size)] = row
        log(f"  batch {batch_size}: " + ", ".join(f"{name} {row[name]['median']:.1f}" for name in embedders)
            + " images/s (medians)" + (f", ONNX Runtime / torch {row['onnx_to_torch_paired_ratio']:.2f}x"
                                       if "onnx_to_torch_paired_ratio" in row else ""))
    return out


def backends_agreement(embedders: dict, tensors: torch.Tensor) -> dict:
    """Cosine between the backends' vectors of the same images (the contract: >= 0.9999)."""
    vectors = {name: embedder.embed_tensors(tensors) for name, embedder in embedders.items()}
    if not {"torch", "onnx"} <= set(vectors):
        return {}
    cosines = np.sum(vectors["torch"] * vectors["onnx"], axis=1)
    return {"images": len(tensors), "min_cosine": float(cosines.min()), "median_cosine": float(np.median(cosines))}


def _pipeline_row(embedder, *, tensors, decoded, rows, batch_size: int, compare_without_duplicates: bool, log) -> dict:
    row: dict = {"batch_size": batch_size}
    before = forward_images_per_second(embedder, tensors, batch_size)
    started = time.perf_counter()
    embedder.embed(decoded, batch_size=batch_size)
    row["embed_pil_images_per_second"] = len(decoded) / (time.perf_counter() - started)
    report = None
    if rows:
        try:
            report = catalog_embed(model_name=embedder.name, batch_size=batch_size, rows=rows, backend=embedder.backend)
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
        row["pipeline_loader_workers"] = report.loader_workers
    if report is not None and compare_without_duplicates:
        # The same pipeline with the per-batch duplicate check off (the import path that
        # leaves it to one scan_duplicates afterwards, as make demo does): isolates that check's cost.
        bare = catalog_embed(model_name=embedder.name, batch_size=batch_size, rows=rows, detect_duplicates=False,
                             backend=embedder.backend)
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
    log(
        f"  {embedder.backend}, batch {batch_size}: forward {row['forward_images_per_second']:.1f} images/s"
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
    return row


def throughput_bench(
    *,
    model_name: str | None,
    batch_sizes: Sequence[int],
    limit: int,
    pipeline_batch_sizes: Sequence[int] | None = None,
    backends: Sequence[str] = BACKENDS,
    side_by_side_runs: int = SIDE_BY_SIDE_RUNS,
    side_by_side_images: int = SIDE_BY_SIDE_IMAGES,
    fallback_paths: Sequence[str] = (),
    compare_without_duplicates: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Images/s per backend and batch size; see the module docstring. Needs Django (the pipeline).

    ``batch_sizes``: the side-by-side table; ``pipeline_batch_sizes`` (default: the same):
    the pipeline's, for every backend. ``by_batch`` holds the configured backend's rows.
    """
    from django.core.files.storage import default_storage

    default = load_embedder(model_name)
    embedders = {name: load_embedder(default.name, backend=name) for name in backends}
    # Only images whose file is there (a database restored without its media, or rows left
    # by other tools, must not stop the benchmark); the first ``limit`` of them by id.
    rows = [r for r in images_to_embed(model_name=default.name, only_missing=False) if default_storage.exists(r.name)][:limit]
    result: dict = {
        "model": default.name, "device": default.device, "backend": default.backend, "images": 0,
        "torch_threads": torch.get_num_threads(),
        "onnx_threads": next((e._runner.threads for e in embedders.values() if e._runner is not None), None),
        "backends_loaded": {name: e.backend for name, e in embedders.items()},
    }
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
    tensors = torch.stack([default.preprocess(img) for img in decoded])
    preprocess_seconds = time.perf_counter() - started
    result["decode_images_per_second"] = len(sources) / decode_seconds
    result["preprocess_images_per_second"] = len(sources) / preprocess_seconds
    result["decode_preprocess_images_per_second"] = len(sources) / (decode_seconds + preprocess_seconds)
    log(
        f"  decode {result['decode_images_per_second']:.0f} images/s, preprocess "
        f"{result['preprocess_images_per_second']:.0f} images/s (one thread)"
    )

    sample = tensors[:side_by_side_images]
    result["agreement"] = backends_agreement(embedders, sample)
    if result["agreement"]:
        log(f"  torch vs ONNX Runtime: min cosine {result['agreement']['min_cosine']:.6f} over {len(sample)} images")
    result["backends"] = backends_side_by_side(embedders, sample, batch_sizes, runs=side_by_side_runs, log=log)

    result["by_backend"] = {}
    for name, embedder in embedders.items():
        by_batch = {
            str(b): _pipeline_row(embedder, tensors=tensors, decoded=decoded, rows=rows, batch_size=b,
                                  compare_without_duplicates=compare_without_duplicates, log=log)
            for b in (pipeline_batch_sizes or batch_sizes)
        }
        result["by_backend"][name] = {"backend": embedder.backend, "by_batch": by_batch}
    result["by_batch"] = result["by_backend"].get(default.backend, {}).get("by_batch", {})
    return result
