"""Retrieval metrics and exact search, in numpy only (no Django, no torch).

Conventions: vectors are float32 rows of unit L2 norm, so the dot product is the
cosine similarity; a ranking is an (n_queries, K) array of gallery row numbers, best
first; ``correct[i]`` is the set of gallery rows that count as a hit for query ``i``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# Gallery rows scored per block in ``exact_top_k``: 1,000 queries x 100,000 rows of
# float32 scores is 400 MB, the most we want resident at once on a 24 GB shared box.
EXACT_BLOCK_ROWS = 100_000


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def top_k_one(gallery: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` rows for one query: a matrix-vector product and argpartition.

    This is the "exact numpy" contender of the speed benchmark, so it is written the way
    a plain numpy implementation would be, with no batching across queries.
    """
    scores = gallery @ query
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def exact_top_k(queries: np.ndarray, gallery: np.ndarray, k: int, block: int = EXACT_BLOCK_ROWS) -> np.ndarray:
    """Exact top-``k`` gallery rows per query by cosine, best first, (n_queries, k).

    Ties are broken by the lower row number, so results are deterministic.
    """
    queries = np.asarray(queries, dtype=np.float32)
    k = min(k, len(gallery))
    n = len(queries)
    best_scores = np.full((n, 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((n, 0), dtype=np.int64)
    for start in range(0, len(gallery), block):
        scores = queries @ np.asarray(gallery[start : start + block], dtype=np.float32).T
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        part_scores = np.take_along_axis(scores, part, axis=1)
        all_scores = np.concatenate([best_scores, part_scores], axis=1)
        all_rows = np.concatenate([best_rows, part + start], axis=1)
        # Sort by score descending, then row ascending (lexsort: last key is primary).
        order = np.lexsort((all_rows, -all_scores), axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        best_rows = np.take_along_axis(all_rows, order, axis=1)
    return best_rows


def recall_at_k(ranking: Sequence[Sequence[int]], correct: Sequence[Iterable[int]], ks: Sequence[int]) -> dict[int, float]:
    """Share of queries with at least one correct row among their top ``k``, per ``k``."""
    if len(ranking) != len(correct):
        raise ValueError("ranking and correct must have one entry per query")
    if not len(ranking):
        return {k: float("nan") for k in ks}
    correct_sets = [set(c) for c in correct]
    return {
        k: float(np.mean([bool(correct_sets[i].intersection(list(row)[:k])) for i, row in enumerate(ranking)]))
        for k in ks
    }


def precision_at_k(ranking: Sequence[Sequence[int]], relevant: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Per query: the share of its top ``k`` rows that are relevant.

    ``relevant[i]`` is a boolean mask over gallery rows. A ranking shorter than ``k``
    (a filtered index scan that came back short) counts the missing places as misses.
    """
    values = np.empty(len(ranking), dtype=np.float64)
    for i, row in enumerate(ranking):
        top = np.asarray(list(row)[:k], dtype=np.int64)
        values[i] = float(relevant[i][top].sum()) / k if len(top) else 0.0
    return values


def neighbour_recall(found: Sequence[Sequence[int]], truth: np.ndarray, k: int) -> float:
    """ANN recall@k: mean share of the exact top ``k`` that the approximate search returned."""
    if not len(found):
        return float("nan")
    hits = [len(set(list(f)[:k]).intersection(truth[i, :k].tolist())) / k for i, f in enumerate(found)]
    return float(np.mean(hits))


def percentiles(samples_ms: Sequence[float] | np.ndarray, points: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """{"p50": ..., "p95": ...} of latencies in milliseconds (nan when there are none)."""
    samples = np.asarray(samples_ms, dtype=np.float64)
    if not samples.size:
        return {f"p{p}": float("nan") for p in points}
    return {f"p{p}": float(np.percentile(samples, p)) for p in points}


def grouped_mean(values: np.ndarray, groups: Sequence[str]) -> dict[str, dict[str, float]]:
    """{group: {"n": count, "mean": mean}} for per-label tables, sorted by group name."""
    out: dict[str, dict[str, float]] = {}
    groups = np.asarray(groups)
    for name in sorted(set(groups.tolist())):
        mask = groups == name
        out[name] = {"n": int(mask.sum()), "mean": float(values[mask].mean())}
    return out


def macro_mean(per_group: Mapping[str, Mapping[str, float]]) -> float:
    """Unweighted mean over groups (each label counts once, whatever its size)."""
    return float(np.mean([g["mean"] for g in per_group.values()])) if per_group else float("nan")
