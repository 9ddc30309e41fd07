#!/usr/bin/env python
"""Measure the embedding package: retrieval quality per resize policy and CPU throughput.

(a) Retrieval: a seeded gallery of catalogue images (every id of duplicates.csv
    plus random others) is embedded with each resize policy; every
    aspect-preserving copy (``image_b``) is queried against it by exact cosine
    similarity. Prints R@1 / R@10 per policy. A hit is the query's own id, or
    a gallery image whose file is byte-identical to it (the catalogue lists
    some photos under two ids, see catalog_duplicate_candidates.csv).
(b) Throughput in images/s: the raw forward pass on pre-made tensors
    (``embed_tensors``) and the full ``embed()`` path on decoded PIL images,
    at several batch sizes, median of --repeats runs; by default also the
    forward pass with 1 torch thread and with the contiguous (NCHW) memory
    layout (turn off with --no-compare-threads / --no-compare-layouts).
    --compare-normalisation also scores efficientnet_lite0 with ImageNet
    mean/std instead of the (x - 127) / 128 scaling it was trained with.

Writes everything as JSON to --json. The default run takes about 3-4 minutes
on a 2-core CPU; shrink it with --gallery-size / --limit-queries /
--throughput-images, or skip parts with --skip-retrieval / --skip-throughput.

    .venv/bin/python lab/measure_embedding.py
    .venv/bin/python lab/measure_embedding.py --gallery-size 500 --limit-queries 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lab.datasets import CATALOG_DIR, csv_rows  # noqa: E402
from visualsearch.embedding import (  # noqa: E402
    RESIZE_POLICIES,
    configure,
    current_settings,
    load_embedder,
    reset_configuration,
)
from visualsearch.embedding.backbones import IMAGENET_MEAN, IMAGENET_STD, get_backbone  # noqa: E402
from visualsearch.embedding.embedder import Embedder  # noqa: E402


@dataclass(frozen=True)
class Pair:
    id: str
    image_a: str
    image_b: str
    variant: str


# --------------------------------------------------------------------------- data


def read_pairs(data: Path) -> list[Pair]:
    return [Pair(r["id"], r["image_a"], r["image_b"], r["variant"]) for r in csv_rows(data / "duplicates.csv")]


def read_catalogue(data: Path) -> dict[str, str]:
    return {row["id"]: row["image"] for row in csv_rows(data / "labels.csv")}


def choose_gallery(catalogue: dict[str, str], pairs: Sequence[Pair], size: int, seed: int) -> list[str]:
    """All ids that have a query, then random distractors up to ``size`` (seeded)."""
    must = sorted({pair.id for pair in pairs})
    others = sorted(set(catalogue) - set(must))
    extra = max(0, size - len(must))
    return must + random.Random(seed).sample(others, min(extra, len(others)))


def open_decoded(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()  # decode now, so JPEG decoding is not part of any timing
    return image


def file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- retrieval


def recall_at(
    queries: np.ndarray, gallery: np.ndarray, correct: list[set[int]], ks: Sequence[int]
) -> dict[int, float]:
    """Share of queries with a correct gallery row among the top k by cosine."""
    scores = queries @ gallery.T  # rows are unit length, so this is cosine similarity
    top = np.argsort(-scores, axis=1, kind="stable")[:, : max(ks)]
    found = [[bool(correct[i] & set(top[i, :k].tolist())) for i in range(len(top))] for k in ks]
    return {k: float(np.mean(hits)) for k, hits in zip(ks, found)}


@dataclass
class RetrievalSet:
    gallery: list[Image.Image]
    queries: list[Image.Image]
    variants: list[str]  # per query: which copy (225x300 or 60x80)
    correct: list[set[int]]  # per query: gallery rows that count as a hit
    same_id: list[set[int]]  # per query: only the row of its own id
    square_gallery: bool


def load_retrieval_set(args: argparse.Namespace) -> RetrievalSet:
    pairs = read_pairs(args.data)
    if args.limit_queries:
        pairs = random.Random(args.seed).sample(pairs, min(args.limit_queries, len(pairs)))
    catalogue = read_catalogue(args.data)
    gallery_ids = choose_gallery(catalogue, pairs, args.gallery_size, args.seed)
    gallery_paths = [args.data / catalogue[i] for i in gallery_ids]
    gallery = [open_decoded(p) for p in gallery_paths]

    # A hit is the query's own id or a byte-identical copy listed under another id.
    digests = [file_digest(p) for p in gallery_paths]
    rows_by_digest: dict[str, set[int]] = {}
    for row, digest in enumerate(digests):
        rows_by_digest.setdefault(digest, set()).add(row)
    row_of_id = {gid: row for row, gid in enumerate(gallery_ids)}
    return RetrievalSet(
        gallery=gallery,
        queries=[open_decoded(args.data / pair.image_b) for pair in pairs],
        variants=[pair.variant for pair in pairs],
        correct=[rows_by_digest[digests[row_of_id[pair.id]]] for pair in pairs],
        same_id=[{row_of_id[pair.id]} for pair in pairs],
        square_gallery=all(image.width == image.height for image in gallery),
    )


def score(
    embedder: Embedder, data: RetrievalSet, gallery_vectors: np.ndarray | None = None
) -> tuple[dict, np.ndarray]:
    """R@1/R@10 of ``embedder``; pass ``gallery_vectors`` to reuse an identical gallery."""
    started = time.perf_counter()
    if gallery_vectors is None:
        gallery_vectors = embedder.embed(data.gallery)
    query_vectors = embedder.embed(data.queries)
    per_variant = {}
    for variant in sorted(set(data.variants)):
        rows = [i for i, v in enumerate(data.variants) if v == variant]
        hits = recall_at(query_vectors[rows], gallery_vectors, [data.correct[i] for i in rows], (1, 10))
        per_variant[variant] = {"n": len(rows), "r1": hits[1], "r10": hits[10]}
    overall = recall_at(query_vectors, gallery_vectors, data.correct, (1, 10))
    by_id = recall_at(query_vectors, gallery_vectors, data.same_id, (1, 10))
    result = {
        "r1": overall[1],
        "r10": overall[10],
        "r1_same_id_only": by_id[1],
        "r10_same_id_only": by_id[10],
        "per_variant": per_variant,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result, gallery_vectors


def imagenet_normalised_lite0(resize_policy: str) -> Embedder:
    """efficientnet_lite0 with torchvision's ImageNet mean/std instead of its TF training scaling."""
    spec = get_backbone("efficientnet_lite0")
    spec = replace(spec, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    model = spec.build(current_settings().weights_path("efficientnet_lite0"))
    device = load_embedder("efficientnet_lite0").device
    return Embedder(spec, model, device=device, resize_policy=resize_policy)


def measure_retrieval(args: argparse.Namespace) -> dict:
    data = load_retrieval_set(args)
    print(f"retrieval: {len(data.gallery)} gallery images, {len(data.queries)} queries, model {args.model}")

    def show(label: str, result: dict) -> None:
        print(f"  {label:28s} R@1 {result['r1']:.3f}  R@10 {result['r10']:.3f}  ({result['seconds']} s)")

    results: dict[str, dict] = {}
    shared_gallery: np.ndarray | None = None
    for policy in args.policies:
        configure(resize_policy=policy)
        # Every policy resizes a square image identically: embed such a gallery once.
        results[policy], gallery_vectors = score(load_embedder(args.model), data, shared_gallery)
        if data.square_gallery:
            shared_gallery = gallery_vectors
        show(policy, results[policy])

    normalisation: dict[str, dict] = {}
    if args.compare_normalisation and args.model == "efficientnet_lite0":
        reset_configuration()
        policy = current_settings().resize_policy
        result, _ = score(imagenet_normalised_lite0(policy), data)
        normalisation["imagenet_mean_std"] = {"resize_policy": policy, **result}
        show(f"{policy} + ImageNet mean/std", result)
    return {
        "gallery_size": len(data.gallery),
        "queries": len(data.queries),
        "gallery_square": data.square_gallery,
        "policies": results,
        **({"normalisation": normalisation} if normalisation else {}),
    }


# --------------------------------------------------------------------------- throughput


def median_rate(run: Callable[[], None], n_images: int, repeats: int) -> float:
    """Median images/s over ``repeats`` timed runs, after one untimed warm-up."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return n_images / statistics.median(times)


def forward_rate(embedder: Embedder, tensors: torch.Tensor, batch_size: int, repeats: int) -> float:
    def run() -> None:
        for start in range(0, len(tensors), batch_size):
            embedder.embed_tensors(tensors[start : start + batch_size])

    return median_rate(run, len(tensors), repeats)


def embed_rate(embedder: Embedder, images: list[Image.Image], batch_size: int, repeats: int) -> float:
    return median_rate(lambda: embedder.embed(images, batch_size=batch_size), len(images), repeats)


def throughput_images(args: argparse.Namespace) -> list[Image.Image]:
    """Aspect-preserving 225x300 copies: like uploads, they need a real resize."""
    paths = sorted((args.data / "variants" / "resized_225x300").glob("*.jpg"))
    paths = random.Random(args.seed).sample(paths, min(args.throughput_images, len(paths)))
    return [open_decoded(path) for path in paths]


def measure_throughput(args: argparse.Namespace) -> dict:
    reset_configuration()  # measure the defaults, not the last policy tried above
    configure(device="cpu")
    embedder = load_embedder(args.model)
    images = throughput_images(args)
    tensors = torch.stack([embedder.preprocess(image) for image in images])
    default_threads = torch.get_num_threads()
    print(
        f"throughput: {len(images)} images, model {args.model}, device cpu, "
        f"resize policy {embedder.resize_policy}, torch threads {default_threads}, "
        f"cpu_count {os.cpu_count()}"
    )

    rows: list[dict] = []

    def record(variant: str, batch_size: int, forward: float, full: float | None) -> None:
        rows.append({"variant": variant, "batch_size": batch_size, "forward_img_s": round(forward, 1),
                     "embed_img_s": None if full is None else round(full, 1)})
        full_text = "-" if full is None else f"{full:6.1f}"
        print(f"  {variant:28s} batch {batch_size:3d}: forward {forward:6.1f}  embed() {full_text}")

    for batch_size in args.batch_sizes:
        record(f"threads={default_threads}, channels_last", batch_size,
               forward_rate(embedder, tensors, batch_size, args.repeats),
               embed_rate(embedder, images, batch_size, args.repeats))

    if args.compare_threads and default_threads != 1:
        torch.set_num_threads(1)
        try:
            for batch_size in args.batch_sizes:
                record("threads=1, channels_last", batch_size,
                       forward_rate(embedder, tensors, batch_size, args.repeats), None)
        finally:
            torch.set_num_threads(default_threads)

    if args.compare_layouts:
        # A separate model instance: Module.to(memory_format=...) works in place.
        spec = get_backbone(args.model)
        model = spec.build(current_settings().weights_path(args.model))
        contiguous = Embedder(spec, model, device="cpu", resize_policy=embedder.resize_policy,
                              memory_format=torch.contiguous_format)
        for batch_size in args.batch_sizes:
            record(f"threads={default_threads}, contiguous", batch_size,
                   forward_rate(contiguous, tensors, batch_size, args.repeats), None)

    return {
        "images": len(images),
        "repeats": args.repeats,
        "resize_policy": embedder.resize_policy,
        "torch_threads": default_threads,
        "rows": rows,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=CATALOG_DIR, help="fashion_product_images folder")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--policies", type=lambda s: s.split(","), default=list(RESIZE_POLICIES))
    parser.add_argument("--gallery-size", type=int, default=2000)
    parser.add_argument("--limit-queries", type=int, default=0, help="0 = all rows of duplicates.csv")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--throughput-images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compare-threads", dest="compare_threads", action="store_false")
    parser.add_argument("--no-compare-layouts", dest="compare_layouts", action="store_false")
    parser.add_argument(
        "--compare-normalisation",
        action="store_true",
        help="also score efficientnet_lite0 with ImageNet mean/std (adds ~1 minute)",
    )
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "reports" / "embedding_measure.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    report: dict = {
        "model": args.model,
        "seed": args.seed,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "cuda_available": torch.cuda.is_available(),
            # Other processes skew timings on a shared box; keep the evidence.
            "loadavg_at_start": os.getloadavg(),
        },
    }
    if not args.skip_retrieval:
        report["retrieval"] = measure_retrieval(args)
    if not args.skip_throughput:
        report["throughput"] = measure_throughput(args)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json} ({report['seconds']} s, load average at end {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
