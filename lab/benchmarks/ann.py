"""Nearest-neighbour speed: HNSW in pgvector against exact numpy and scikit-learn's BallTree.

The vectors are synthetic but shaped like the real ones: a Gaussian with the mean and
the top principal directions and variances of the catalogue's real embeddings (the
rest of the variance spread evenly over the remaining directions), each row scaled to
unit length. Without real embeddings (an empty database) a power-law spectrum in a
random basis stands in; the JSON says which was used. Queries are fresh draws from
the same distribution, so none of them is in the table.

Isotropic Gaussian vectors are the worst case for graph indexes and say little about
catalogue data: measured on the 2-core box, the HNSW build of 100,000 isotropic
1280-d vectors took 415 s and ef_search 40 queries 16.7 ms (p50), several times the
cost on vectors with the real spectrum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from lab.benchmarks import pgindex
from lab.metrics import exact_top_k, neighbour_recall, percentiles, top_k_one

K = 10
EF_SEARCH_VALUES = (40, 100, 200, 400)
# Share of rows matching the filtered query: 50 categories of 2% each.
FILTER_CATEGORIES = 50
PCA_COMPONENTS = 256
# BallTree copies the data as float64: 1M x 1280 would be 10 GB and its build takes
# hours in 1280 dimensions, so it stops at 100k (build measured at ~1 min there).
BALLTREE_MAX_ROWS = 100_000
# The vector (float32) variant doubles load and build time; 1M runs halfvec only.
VECTOR_KIND_MAX_ROWS = 100_000
# pgvector exact (sequential scan + sort) is ~0.1 s per query at 100k: a few queries do.
PG_EXACT_MAX_ROWS = 100_000
SAMPLE_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class VectorModel:
    mean: np.ndarray  # (dim,)
    basis: np.ndarray  # (r, dim), orthonormal rows
    scales: np.ndarray  # (r,), standard deviation along each basis row
    residual_sd: float  # per-dimension sd of the isotropic remainder
    source: str
    # "clustered": rows are real vectors plus noise of the same shape, scaled by anchor_noise.
    anchors: np.ndarray | None = None
    anchor_noise: float = 0.0

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def vector_model_fit(real: np.ndarray, components: int = PCA_COMPONENTS) -> VectorModel:
    """Mean and top principal components of real embeddings (rows)."""
    real = np.asarray(real, dtype=np.float64)
    n, dim = real.shape
    mean = real.mean(axis=0)
    centred = real - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variances = singular**2 / max(1, n - 1)
    r = min(components, len(variances) - 1)
    total = float(variances.sum())
    kept = float(variances[:r].sum())
    residual_sd = float(np.sqrt(max(total - kept, 0.0) / max(1, dim - r)))
    return VectorModel(
        mean=mean.astype(np.float32),
        basis=vt[:r].astype(np.float32),
        scales=np.sqrt(variances[:r]).astype(np.float32),
        residual_sd=residual_sd,
        source=f"fitted to {n} real embeddings ({r} components, {kept / total:.1%} of the variance)",
    )


def vector_model_default(dim: int, seed: int = 0, components: int = PCA_COMPONENTS) -> VectorModel:
    """A stand-in with a power-law spectrum, for when no real embeddings exist."""
    rng = np.random.default_rng([seed, 1])
    basis, _ = np.linalg.qr(rng.standard_normal((dim, components)))
    scales = (1.0 / np.sqrt(np.arange(1, components + 1))).astype(np.float32) * 0.05
    mean = np.abs(rng.standard_normal(dim)).astype(np.float32) * 0.02
    return VectorModel(
        mean=mean,
        basis=basis.T.astype(np.float32),
        scales=scales,
        residual_sd=float(scales[-1]) / 2,
        source=f"power-law spectrum, random basis ({components} components; no real embeddings found)",
    )


def vector_model_clustered(real: np.ndarray, target_cosine: float = 0.9, components: int = PCA_COMPONENTS) -> VectorModel:
    """Rows drawn around the real vectors: a random real vector plus noise shaped like the
    real covariance, scaled so that a row's cosine to its real vector is about ``target_cosine``
    (0.9: about as close as two colourways of one product). An optimistic counterpart to the
    plain Gaussian: every query has near neighbours, as catalogue items mostly do.
    """
    fit = vector_model_fit(real, components)
    total_variance = float(np.sum(fit.scales.astype(np.float64) ** 2) + fit.residual_sd**2 * (fit.dim - len(fit.scales)))
    noise = float(np.sqrt((1.0 / target_cosine**2 - 1.0) / total_variance))
    anchors = np.asarray(real, dtype=np.float32)
    anchors = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    return VectorModel(
        mean=fit.mean, basis=fit.basis, scales=fit.scales, residual_sd=fit.residual_sd,
        source=f"clustered around {len(real)} real embeddings (cosine to the anchor about {target_cosine}; noise shaped like "
               f"their {len(fit.scales)} principal components)",
        anchors=anchors, anchor_noise=noise,
    )


def vectors_sample(model: VectorModel, n: int, *, seed: int, stream: int, chunk: int = SAMPLE_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """``n`` unit rows in chunks; the same (seed, stream) gives the same rows on any machine."""
    r = len(model.scales)
    for index, start in enumerate(range(0, n, chunk)):
        rows = min(chunk, n - start)
        rng = np.random.default_rng([seed, stream, index])
        coeffs = rng.standard_normal((rows, r), dtype=np.float32) * model.scales
        noise = rng.standard_normal((rows, model.dim), dtype=np.float32) * np.float32(model.residual_sd)
        if model.anchors is None:
            x = model.mean + coeffs @ model.basis + noise
        else:
            picks = rng.integers(0, len(model.anchors), size=rows)
            x = model.anchors[picks] + np.float32(model.anchor_noise) * (coeffs @ model.basis + noise)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield x.astype(np.float32, copy=False)


def _time_each(fn: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, warmup: int = 3) -> tuple[list[np.ndarray], np.ndarray]:
    for q in queries[:warmup]:
        fn(q)
    results, latencies = [], np.empty(len(queries))
    for i, q in enumerate(queries):
        started = time.perf_counter()
        results.append(fn(q))
        latencies[i] = (time.perf_counter() - started) * 1000.0
    return results, latencies


def _latency_row(latencies: np.ndarray, recall: float, **extra) -> dict:
    return {**percentiles(latencies, (50, 95, 99)), "queries": int(len(latencies)), "recall_at_10": recall, **extra}


@dataclass(frozen=True)
class AnnConfig:
    sizes: tuple[int, ...]
    queries: int  # for recall (HNSW) and ground truth
    numpy_queries: int  # single-query exact numpy latency samples
    balltree_queries: int
    pg_exact_queries: int
    filter_queries: int
    ef_search_values: tuple[int, ...] = EF_SEARCH_VALUES
    default_ef_search: int = 100
    m: int = 16
    ef_construction: int = 64
    seed: int = 0


def ann_bench_size(
    conn,
    model: VectorModel,
    n: int,
    config: AnnConfig,
    *,
    log: Callable[[str], None] = print,
    kinds: tuple[str, ...] | None = None,
) -> dict:
    """Every contender at one table size; returns the JSON-ready result."""
    result: dict = {"n": n, "dim": model.dim, "k": K}
    t0 = time.perf_counter()
    base = np.empty((n, model.dim), dtype=np.float32)  # filled in place: no second 5 GB copy at 1M
    row = 0
    for chunk in vectors_sample(model, n, seed=config.seed, stream=n):
        base[row : row + len(chunk)] = chunk
        row += len(chunk)
    queries = next(vectors_sample(model, config.queries, seed=config.seed, stream=1, chunk=config.queries))
    rng = np.random.default_rng([config.seed, n, 2])
    categories = rng.integers(0, FILTER_CATEGORIES, size=n).astype(np.int16)
    filter_cats = rng.integers(0, FILTER_CATEGORIES, size=config.filter_queries)
    result["generate_seconds"] = time.perf_counter() - t0
    log(f"  {n:,} vectors generated in {result['generate_seconds']:.1f}s; exact ground truth ...")

    t0 = time.perf_counter()
    truth = exact_top_k(queries, base, K)
    filtered_truth = []
    for i, cat in enumerate(filter_cats):
        rows = np.flatnonzero(categories == cat)
        filtered_truth.append(rows[exact_top_k(queries[i : i + 1], base[rows], K)[0]])
    filtered_truth = np.array(filtered_truth) if filtered_truth else np.zeros((0, K), dtype=np.int64)
    result["ground_truth_seconds"] = time.perf_counter() - t0

    # Exact numpy, one query at a time (what a plain numpy service would do).
    nq = min(config.numpy_queries, len(queries))
    found, lat = _time_each(lambda q: top_k_one(base, q, K), queries[:nq])
    result["numpy_exact"] = _latency_row(lat, neighbour_recall(found, truth[:nq], K))
    log(f"  numpy exact: p50 {result['numpy_exact']['p50']:.2f} ms")

    # scikit-learn BallTree: euclidean distance on unit vectors ranks like cosine.
    if n <= BALLTREE_MAX_ROWS and config.balltree_queries:
        from sklearn.neighbors import BallTree

        t0 = time.perf_counter()
        tree = BallTree(base, leaf_size=40)
        build = time.perf_counter() - t0
        nb = min(config.balltree_queries, len(queries))
        found, lat = _time_each(lambda q: tree.query(q[None, :], k=K, return_distance=False)[0], queries[:nb], warmup=1)
        result["balltree"] = _latency_row(lat, neighbour_recall(found, truth[:nb], K), build_seconds=build)
        log(f"  BallTree: build {build:.1f}s, p50 {result['balltree']['p50']:.1f} ms")
        del tree
    else:
        result["balltree"] = {"skipped": f"more than {BALLTREE_MAX_ROWS:,} rows (float64 copy, build time)"}

    kinds = kinds or (("halfvec", "vector") if n <= VECTOR_KIND_MAX_ROWS else ("halfvec",))
    for kind in kinds:
        result[kind] = _pg_kind(conn, kind, base, categories, queries, truth, filter_cats, filtered_truth, n, config, log)
    return result


def _pg_kind(conn, kind, base, categories, queries, truth, filter_cats, filtered_truth, n, config, log) -> dict:
    out: dict = {}
    t0 = time.perf_counter()
    table = pgindex.scratch_create(
        conn, tag=f"ann_{kind}_{n}", kind=kind, dim=base.shape[1], chunks=pgindex.array_chunks(base, categories)
    )
    out["load_seconds"] = time.perf_counter() - t0
    try:
        log(f"  {kind}: loaded in {out['load_seconds']:.1f}s; building HNSW (m={config.m}, ef_construction={config.ef_construction}) ...")
        build = pgindex.hnsw_build(conn, table, m=config.m, ef_construction=config.ef_construction)
        out["build"] = {"seconds": build.seconds, "index_bytes": build.index_bytes, "table_bytes": build.table_bytes,
                        "m": build.m, "ef_construction": build.ef_construction}
        log(f"  {kind}: index built in {build.seconds:.1f}s, {build.index_bytes / 2**20:.0f} MiB")
        out["hnsw"] = {}
        for ef in config.ef_search_values:
            found, lat = pgindex.index_search(conn, table, queries, k=K, ef_search=ef, warmup=min(20, len(queries)))
            out["hnsw"][str(ef)] = _latency_row(lat, neighbour_recall(found, truth, K))
            row = out["hnsw"][str(ef)]
            log(f"  {kind} HNSW ef_search={ef}: p50 {row['p50']:.2f} ms, p95 {row['p95']:.2f} ms, recall@10 {row['recall_at_10']:.3f}")
        if n <= PG_EXACT_MAX_ROWS and config.pg_exact_queries:
            nq = min(config.pg_exact_queries, len(queries))
            found, lat = pgindex.index_search(conn, table, queries[:nq], k=K, ef_search=config.default_ef_search, exact=True, warmup=1)
            out["pg_exact"] = _latency_row(lat, neighbour_recall(found, truth[:nq], K))
        if kind == "halfvec" and len(filter_cats):
            out["filtered"] = _filtered(conn, table, queries[: len(filter_cats)], filter_cats, filtered_truth, config)
            for mode, row in out["filtered"].items():
                log(f"  filtered (2% of rows), iterative_scan={mode}: {row['mean_results']:.1f} of {K} rows back, p50 {row['p50']:.2f} ms")
    finally:
        pgindex.scratch_drop(conn, table)
    return out


def _filtered(conn, table, queries, cats, truth, config) -> dict:
    out = {}
    for mode in ("off", "relaxed_order", "strict_order"):
        found, lat = pgindex.index_search(
            conn, table, queries, k=K, ef_search=config.default_ef_search, iterative_scan=mode, category=cats.tolist(),
            warmup=min(5, len(queries)),
        )
        counts = np.array([len(f) for f in found])
        out[mode] = {
            **percentiles(lat, (50, 95)),
            "queries": int(len(found)),
            "ef_search": config.default_ef_search,
            "mean_results": float(counts.mean()),
            "min_results": int(counts.min()),
            "full_share": float(np.mean(counts == K)),
            "recall_at_10": neighbour_recall(found, truth, K),
        }
    return out


def pick_ef_search(sizes_result: list[dict], target_recall: float = 0.95) -> int | None:
    """Smallest ef_search whose halfvec recall@10 reaches the target at every measured size."""
    candidates = None
    for res in sizes_result:
        hnsw = res.get("halfvec", {}).get("hnsw", {})
        ok = {int(ef) for ef, row in hnsw.items() if row["recall_at_10"] >= target_recall}
        candidates = ok if candidates is None else candidates & ok
    return min(candidates) if candidates else None
