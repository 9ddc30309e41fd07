"""PNG plots for the reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Categories drawn in their own colour on the 2-D map; the rest are grey "other".
MAP_TOP_CATEGORIES = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def embedding_map(coords: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    """Scatter of 2-D coordinates coloured by the most frequent labels."""
    plt = _pyplot()
    counts = Counter(labels)
    top = [name for name, _ in counts.most_common(MAP_TOP_CATEGORIES)]
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(9, 7.5), dpi=110)
    other = ~np.isin(labels, top)
    size = float(np.clip(20000 / max(1, len(labels)), 2, 16))  # dots readable at 150 and at 10,000 points
    ax.scatter(coords[other, 0], coords[other, 1], s=size, c="#cccccc", label=f"other ({int(other.sum())})", linewidths=0)
    cmap = plt.get_cmap("tab20")
    for i, name in enumerate(top):
        mask = labels == name
        ax.scatter(coords[mask, 0], coords[mask, 1], s=size * 1.3, color=cmap(i % 20), label=f"{name} ({int(mask.sum())})", linewidths=0)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def ann_tradeoff(sizes: Sequence[dict], path: Path) -> None:
    """Latency p50 (log) against recall@10 per table size: HNSW at each ef_search, exact numpy, BallTree."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    markers = {"halfvec": "o", "vector": "s"}
    for i, res in enumerate(sizes):
        colour = plt.get_cmap("tab10")(i)
        dist = res.get("distribution", "gaussian")
        n = f"{res['n']:,}" + ("" if dist == "gaussian" else f" {dist}")
        for kind in ("halfvec", "vector"):
            hnsw = res.get(kind, {}).get("hnsw")
            if not hnsw:
                continue
            efs = sorted(hnsw, key=int)
            ax.plot([hnsw[e]["recall_at_10"] for e in efs], [hnsw[e]["p50"] for e in efs], marker=markers[kind],
                    color=colour, linestyle="-" if kind == "halfvec" else ":", label=f"HNSW {kind}, {n}")
            for e in efs:
                ax.annotate(f"ef {e}", (hnsw[e]["recall_at_10"], hnsw[e]["p50"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if "p50" in res.get("numpy_exact", {}):
            ax.scatter([1.0], [res["numpy_exact"]["p50"]], marker="*", s=80, color=colour, label=f"exact numpy, {n}")
        if "p50" in res.get("balltree", {}):
            ax.scatter([1.0], [res["balltree"]["p50"]], marker="^", s=50, color=colour, label=f"BallTree, {n}")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 against exact search")
    ax.set_ylabel("query latency p50 (ms, log scale)")
    ax.set_title("Nearest-neighbour queries: latency against recall (k = 10)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def throughput_bars(result: dict, path: Path) -> None:
    """Images/s per batch size: forward pass alone, Embedder.embed on decoded images, pipeline."""
    plt = _pyplot()
    by_batch = result.get("by_batch", {})
    if not by_batch:
        return
    batches = sorted(by_batch, key=int)
    series = [
        ("forward pass alone", "forward_images_per_second"),
        ("embed() on decoded images", "embed_pil_images_per_second"),
        ("embed_catalog pipeline", "pipeline_images_per_second"),
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    width = 0.8 / len(series)
    x = np.arange(len(batches))
    for i, (label, key) in enumerate(series):
        values = [by_batch[b].get(key, np.nan) for b in batches]
        ax.bar(x + (i - 1) * width, values, width, label=label)
    ax.set_xticks(x, [f"batch {b}" for b in batches])
    ax.set_ylabel("images / s")
    ax.set_title(f"Embedding throughput ({result.get('model')}, {result.get('device')})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def recall_bars(rows: Sequence[tuple[str, float]], path: Path, title: str) -> None:
    """Horizontal bars, e.g. per-label precision@10."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1.2), dpi=110)
    names = [r[0] for r in rows]
    ax.barh(np.arange(len(rows)), [r[1] for r in rows], color="#4c72b0")
    ax.set_yticks(np.arange(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
