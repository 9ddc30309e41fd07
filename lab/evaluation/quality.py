"""``manage.py evaluate``: retrieval quality on the shared data, CNN against a white-box baseline.

Three query sets against one gallery of catalogue photos:

* copies: every ``image_b`` of ``duplicates.csv`` (the same photo resized and re-encoded
  by another site); R@1 and R@10 of its original.
* consumer-like views: seeded synthetic phone photos of catalogue items
  (``synthetic.consumer_view``); R@1, R@10, R@20 of the item.
* consumer photos: every photo of ``clothing_dataset_cc0``; precision@10 of the
  catalogue articleTypes that ``label_mapping_v1.json`` accepts for its label.

A hit for the first two is the item's own id or a byte-identical photo listed under
another id. Each metric is computed twice: from exact cosine search over the float32
vectors (numpy), and through a real pgvector HNSW index (halfvec, the application's
``m``/``ef_construction``/``ef_search``) over a scratch table in the same database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from lab import datasets, plots, synthetic
from lab.benchmarks import pgindex
from lab.cache import VectorCache, encode_cached, file_key, source_fingerprint
from lab.evaluation import baseline
from lab.evaluation.duplicates import EvalConfig, evaluate
from lab.metrics import (
    exact_top_k,
    grouped_mean,
    macro_mean,
    neighbour_recall,
    percentiles,
    precision_at_k,
    recall_at_k,
    top_k_one,
)
from lab.reports import fmt, json_write, machine_info, md_table, text_table
from lab.split import HoldoutSplit
from visualsearch.duplicates.detection import NEAR_COPY_THRESHOLD
from visualsearch.embedding import current_settings, load_embedder
from visualsearch.embedding.config import model_folder
from visualsearch.embedding.finetuned import (
    METADATA_FILE,
    checkpoint_dir,
    read_metadata,
)

BASELINE_NAME = "baseline_colour_hog"
TOP_K = 20
# Full run: 1,000 synthetic views (about 95 ms each to make, once; then cached as JPEGs).
FULL_SYNTHETIC_VIEWS = 1000
QUICK = {"gallery": 600, "copies": 120, "synthetic": 60, "consumer_per_label": 6}
TSNE_PCA_DIMS = 50
TSNE_PERPLEXITY = 30


@dataclass
class EvalOptions:
    models: tuple[str, ...]
    quick: bool = False
    seed: int = 0
    gallery_size: int | None = None
    copies: int | None = None
    synthetic: int | None = None
    consumer_per_label: int | None = None
    with_baseline: bool = True
    with_index: bool = True
    with_map: bool = True
    with_duplicates: bool = True
    catalog_dir: Path = datasets.CATALOG_DIR
    consumer_dir: Path = datasets.CONSUMER_DIR
    out_dir: Path = Path("reports")
    json_path: Path | None = None
    cache_dir: Path = Path("var/cache/evaluate")
    command: str | None = None
    # Score on the products (and consumer photos) this fine-tuned model's training never saw:
    # its hold-out split (metadata.json), see lab/split.py.
    holdout_model: str | None = None

    def resolved(self) -> EvalOptions:
        if not self.quick:
            return self
        return EvalOptions(**{
            **self.__dict__,
            "gallery_size": self.gallery_size or QUICK["gallery"],
            "copies": self.copies or QUICK["copies"],
            "synthetic": self.synthetic or QUICK["synthetic"],
            "consumer_per_label": self.consumer_per_label or QUICK["consumer_per_label"],
        })


@dataclass
class EvalSet:
    gallery: list[datasets.CatalogItem]
    copies: list[datasets.CopyPair]
    synthetic_items: list[datasets.CatalogItem]
    synthetic_paths: list[Path]
    consumer: list[datasets.ConsumerPhoto]
    identical: list[set[int]]  # per gallery row: rows with byte-identical files
    row_of_id: dict[str, int] = field(default_factory=dict)


def holdout_split(model_name: str):
    """The ``HoldoutSplit`` recorded in a fine-tuned model's metadata."""
    return HoldoutSplit.from_dict(read_metadata(current_settings().models_dir, model_name)["holdout"])


def eval_set_build(options: EvalOptions, log: Callable[[str], None]) -> EvalSet:
    catalogue = datasets.catalog_read(options.catalog_dir)
    all_copies = datasets.copies_read(options.catalog_dir)
    holdout_note = ""
    if options.holdout_model:
        split = holdout_split(options.holdout_model)
        held = split.product_holdout([item.id for item in catalogue], options.catalog_dir)
        catalogue = [item for item in catalogue if item.id in held]
        all_copies = [c for c in all_copies if c.id in held]
        holdout_note = f" (hold-out of {options.holdout_model}: products and contributors its training never saw)"
    copies = datasets.sample(all_copies, options.copies, options.seed, "copies")
    n_synth = options.synthetic if options.synthetic is not None else FULL_SYNTHETIC_VIEWS
    synth_items = datasets.sample(catalogue, n_synth, options.seed, "synthetic")
    must = {c.id for c in copies} | {s.id for s in synth_items}
    if options.gallery_size is None or options.gallery_size >= len(catalogue):
        gallery = catalogue
    else:
        others = [item for item in catalogue if item.id not in must]
        extra = datasets.sample(others, max(0, options.gallery_size - len(must)), options.seed, "gallery")
        keep = must | {item.id for item in extra}
        gallery = [item for item in catalogue if item.id in keep]
    consumer = []
    if (options.consumer_dir / "labels.csv").exists():
        photos = datasets.consumer_read(options.consumer_dir)
        if options.holdout_model:
            photos = [p for p in photos if split.consumer_is_holdout(p.sender_id, p.id)]
        consumer = datasets.stratified_sample(photos, options.consumer_per_label, options.seed)
    views_dir = options.cache_dir / "synthetic_views" / f"v{synthetic.SYNTHETIC_VERSION}_seed{options.seed}"
    views_dir.mkdir(parents=True, exist_ok=True)
    paths, made = [], 0
    for item in synth_items:
        path = views_dir / f"{item.id}.jpg"
        if not path.exists():
            view = synthetic.consumer_view(Image.open(item.path), options.seed, item.id)
            tmp = path.with_suffix(".tmp")
            view.save(tmp, format="JPEG", quality=95)
            tmp.replace(path)
            made += 1
        paths.append(path)
    log(
        f"gallery {len(gallery):,} catalogue photos; queries: {len(copies):,} copies, {len(synth_items):,} synthetic views "
        f"({made} made now, in {views_dir}), {len(consumer):,} consumer photos{holdout_note}"
    )
    return EvalSet(
        gallery=gallery,
        copies=copies,
        synthetic_items=synth_items,
        synthetic_paths=paths,
        consumer=consumer,
        identical=datasets.identical_files([item.path for item in gallery]),
        row_of_id={item.id: row for row, item in enumerate(gallery)},
    )


@dataclass
class Encoder:
    name: str
    dim: int
    fingerprint: str
    encode: Callable[[list[Image.Image]], np.ndarray]
    description: str
    # A fine-tuned model on a frozen backbone: its vectors follow from the backbone's
    # (``Embedder.project_base_vectors``), so the backbone's forward pass is not run twice.
    base: str | None = None
    derive: Callable[[np.ndarray], np.ndarray] | None = None
    # How serving embeds a shopper's photo (``Embedder.embed_queries``: the model's query crop),
    # and the fingerprint of those vectors; None: as ``encode`` / ``fingerprint``.
    encode_query: Callable[[list[Image.Image]], np.ndarray] | None = None
    query_fingerprint: str | None = None

    def for_queries(self) -> Encoder:
        """This encoder as serving embeds queries (itself when queries are embedded like the catalogue)."""
        if self.encode_query is None:
            return self
        return replace(self, encode=self.encode_query, fingerprint=self.query_fingerprint or self.fingerprint,
                       encode_query=None, query_fingerprint=None)


@contextmanager
def encoder_caches(encoder: Encoder, cache_dir: Path) -> Iterator[tuple[Encoder, dict[str, VectorCache]]]:
    """(the encoder of query sets, ``Encoder.for_queries``; the vector caches by fingerprint, one
    file when catalogue and query vectors are the same), closed on exit."""
    queries = encoder.for_queries()
    caches = {fp: VectorCache(cache_dir / encoder.name / f"{fp}.sqlite3")
              for fp in dict.fromkeys((encoder.fingerprint, queries.fingerprint))}
    try:
        yield queries, caches
    finally:
        for cache in caches.values():
            cache.close()


def encoder_for(name: str) -> Encoder:
    if name == BASELINE_NAME:
        return Encoder(
            name=name,
            dim=baseline.feature_dim(),
            fingerprint=source_fingerprint(name, str(baseline.FEATURE_VERSION), paths=[Path(baseline.__file__)]),
            encode=baseline.baseline_embed,
            description="HSV colour histogram (128 bins) + HOG (1,764 values), numpy",
        )

    embedder = load_embedder(name)
    sources = sorted(Path(load_embedder.__code__.co_filename).parent.glob("*.py"))
    parts = [embedder.name, embedder.resize_policy]
    if embedder.mirror_average:  # other vectors from the same weights
        parts.append("mirror-average")
    metadata = embedder.metadata or {}
    if metadata:
        # A re-trained model of the same name must not reuse the old vectors; nor may its
        # float16 copy (ship_model's comparison) reuse those of the float32 weights it came from.
        parts.append(str(metadata.get("created")))
        folder = model_folder(embedder.name)
        if folder is not None:
            sources += sorted(folder.glob("weights*.pt"))
    base = metadata.get("backbone")
    # A frozen backbone's vectors project into the model's; the mirror's would not.
    frozen = bool(metadata) and not metadata.get("train_last_stage") and not embedder.mirror_average
    kind = f"fine-tuned on {base}, " if metadata else ""
    crop = embedder.query_crop
    return Encoder(
        name=embedder.name,
        dim=embedder.dim,
        fingerprint=source_fingerprint(*parts, paths=sources),
        encode=lambda images: embedder.embed(images),
        description=f"{embedder.name} ({kind}{embedder.dim}-d, resize {embedder.resize_policy}, {embedder.device}"
        + (", mirror-averaged" if embedder.mirror_average else "")
        + (f", queries with their centre crop {crop:g}" if crop is not None else "") + ")",
        base=base if frozen and crop is None else None,
        derive=embedder.project_base_vectors if frozen and crop is None else None,
        encode_query=(lambda images: embedder.embed_queries(images)) if crop is not None else None,
        query_fingerprint=source_fingerprint(*parts, f"query-crop-{crop!r}", paths=sources) if crop is not None else None,
    )


def _encode_all(encoder: Encoder, ev: EvalSet, options: EvalOptions, log) -> tuple[dict[str, np.ndarray], int]:
    from tqdm import tqdm

    synth_prefix = f"synthetic-v{synthetic.SYNTHETIC_VERSION}-s{options.seed}"
    groups = {
        "gallery": ([file_key(i.path) for i in ev.gallery], [i.path for i in ev.gallery]),
        "copies": ([file_key(c.path) for c in ev.copies], [c.path for c in ev.copies]),
        "synthetic": ([file_key(p, synth_prefix) for p in ev.synthetic_paths], list(ev.synthetic_paths)),
        "consumer": ([file_key(c.path) for c in ev.consumer], [c.path for c in ev.consumer]),
    }
    total = sum(len(k) for k, _ in groups.values())
    vectors, computed = {}, 0
    # The gallery is embedded as the catalogue is, the rest as serving embeds a shopper's photo.
    with encoder_caches(encoder, options.cache_dir) as (queries, caches), \
            tqdm(total=total, unit="img", desc=f"encoding ({encoder.name})", disable=None) as bar:
        for group, (keys, paths) in groups.items():
            loaders = [lambda p=p: Image.open(p) for p in paths]
            used = encoder if group == "gallery" else queries
            vectors[group], n = encode_cached(caches[used.fingerprint], keys, loaders, used.encode, encoder.dim,
                                              progress=bar.update)
            computed += n
    return vectors, computed


def _index_rankings(gallery: np.ndarray, queries: dict[str, np.ndarray], log) -> tuple[dict[str, np.ndarray], dict]:
    """Top-``TOP_K`` rows per query through a pgvector HNSW index on a scratch table."""
    from django.conf import settings
    from django.db import connection


    conn = pgindex.scratch_connect(connection.get_connection_params())
    info: dict = {}
    try:
        pgindex.scratch_cleanup(conn)
        t0 = time.perf_counter()
        table = pgindex.scratch_create(conn, tag=f"eval_{gallery.shape[1]}", kind="halfvec", dim=gallery.shape[1],
                                       chunks=pgindex.array_chunks(gallery))
        info["load_seconds"] = time.perf_counter() - t0
        try:
            build = pgindex.hnsw_build(conn, table, m=settings.VISUALSEARCH_HNSW_M, ef_construction=settings.VISUALSEARCH_HNSW_EF_CONSTRUCTION)
            info.update(build_seconds=build.seconds, index_bytes=build.index_bytes, m=build.m,
                        ef_construction=build.ef_construction, ef_search=settings.VISUALSEARCH_HNSW_EF_SEARCH)
            out, latencies = {}, []
            for name, q in queries.items():
                if not len(q):
                    out[name] = np.zeros((0, TOP_K), dtype=np.int64)
                    continue
                found, lat = pgindex.index_search(conn, table, q, k=TOP_K, ef_search=settings.VISUALSEARCH_HNSW_EF_SEARCH,
                                                  iterative_scan="relaxed_order")
                out[name] = [list(f) for f in found]
                latencies.extend(lat.tolist())
            info["query_latency_ms"] = percentiles(latencies, (50, 95))
        finally:
            pgindex.scratch_drop(conn, table)
    finally:
        conn.close()
    return out, info


def _metrics(ev: EvalSet, rankings: dict[str, Sequence[Sequence[int]]], gallery_types: np.ndarray, mapping: datasets.LabelMapping) -> dict:
    out: dict = {}
    correct = [ev.identical[ev.row_of_id[c.id]] for c in ev.copies]
    copies = recall_at_k(rankings["copies"], correct, (1, 10))
    variants = np.array([c.variant for c in ev.copies])
    per_variant = {}
    for v in sorted(set(variants.tolist())):
        idx = np.flatnonzero(variants == v)
        r = recall_at_k([rankings["copies"][i] for i in idx], [correct[i] for i in idx], (1, 10))
        per_variant[v] = {"n": int(len(idx)), "r1": r[1], "r10": r[10]}
    out["copies"] = {"n": len(correct), "r1": copies[1], "r10": copies[10], "per_variant": per_variant}

    correct = [ev.identical[ev.row_of_id[s.id]] for s in ev.synthetic_items]
    views = recall_at_k(rankings["synthetic"], correct, (1, 10, 20))
    out["consumer_like"] = {"n": len(correct), "r1": views[1], "r10": views[10], "r20": views[20]}

    if ev.consumer:
        relevant = {label: np.isin(gallery_types, types) for label, types in mapping.article_types.items()}
        masks = [relevant[c.label] for c in ev.consumer]
        p10 = precision_at_k(rankings["consumer"], masks, 10)
        per_label = grouped_mean(p10, [c.label for c in ev.consumer])
        out["category"] = {
            "n": len(ev.consumer),
            "p10_micro": float(p10.mean()),
            "p10_macro": macro_mean(per_label),
            "per_label": {k: {"n": v["n"], "p10": v["mean"]} for k, v in per_label.items()},
        }
    return out


def _exact_latency(gallery: np.ndarray, queries: dict[str, np.ndarray], n: int = 300) -> dict:
    """p50/p95 of one exact top-10 search (numpy matrix-vector product), over up to ``n`` queries.

    BLAS is held to one thread, as in a web worker answering one query: on a shared 2-core
    box a multi-threaded GEMV measured ~8 ms for 1,937 rows whatever the dimension (thread
    hand-offs), against 0.1 ms single-threaded.
    """
    from contextlib import nullcontext


    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        def threadpool_limits(limits):  # noqa: ARG001
            return nullcontext()

    sample = np.concatenate([q for q in queries.values() if len(q)])[:n] if any(len(q) for q in queries.values()) else []
    times = []
    with threadpool_limits(limits=1):
        for q in sample[:10]:  # warm-up
            top_k_one(gallery, q, 10)
        for q in sample:
            t0 = time.perf_counter()
            top_k_one(gallery, q, 10)
            times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times, (50, 95))


def _record_holdout_metrics(options: EvalOptions, result: dict, log) -> None:
    """Write the hold-out scores into the fine-tuned models' metadata.json ("metrics")."""
    import json


    for name, entry in result["models"].items():
        path = checkpoint_dir(current_settings().models_dir, name) / METADATA_FILE
        if "exact" not in entry or not path.is_file():
            continue
        metadata = json.loads(path.read_text())
        metadata.setdefault("metrics", {})[f"holdout_{options.holdout_model}" + ("_quick" if options.quick else "")] = {
            "date": result["machine"]["date_utc"], "command": result.get("command"), "sizes": result["sizes"],
            "exact": {k: v for k, v in entry["exact"].items()}, "index": entry.get("index"),
            "exact_query_ms": entry.get("exact_query_ms"), "index_query_ms": entry.get("index_info", {}).get("query_latency_ms"),
            "compared_with": {n: {"copies_r1": e["exact"]["copies"]["r1"], "views_r1": e["exact"]["consumer_like"]["r1"],
                                  "category_p10": e["exact"].get("category", {}).get("p10_micro")}
                              for n, e in result["models"].items() if n != name and "exact" in e},
        }
        path.write_text(json.dumps(metadata, indent=2, default=str))
        log(f"hold-out metrics recorded in {path}")


def duplicate_detector_section(options: EvalOptions) -> dict:
    """The duplicate detector's precision and recall, from its own evaluation
    (``lab.evaluation.duplicates``, at ``detection.NEAR_COPY_THRESHOLD``), run with the
    settings of ``manage.py evaluate_duplicates`` (``--quick`` there too).

    A failure gives "duplicate detector: not available" with the reason; the rest of the
    evaluation is not affected.
    """
    try:
        if options.quick:
            config = EvalConfig(data_dir=options.catalog_dir, limit=200, pool_extra=400, negatives=1000, synthetic=0)
        else:
            config = EvalConfig(data_dir=options.catalog_dir, synthetic=100)
        summary = evaluate(config).summary(NEAR_COPY_THRESHOLD)
        near, exact = summary["near"], summary.get("exact", {})
        return {
            "source": "lab.evaluation.duplicates.evaluate (as manage.py evaluate_duplicates" + (" --quick)" if options.quick else ")"),
            "threshold": summary.get("threshold"),
            "precision": near["precision"],
            "recall": near["recall"],
            "positives": near.get("positives"),
            "negatives": (near.get("negatives_random") or 0) + (near.get("negatives_hard") or 0),
            "recall_by_variant": near.get("recall_by_variant"),
            "exact_copies": {"precision": exact.get("precision"), "recall": exact.get("recall")},
            "synthetic_recall": summary.get("synthetic_recall"),
        }
    except Exception as exc:  # noqa: BLE001 - the detector is another team's work in progress
        return {"skipped": f"duplicate detector: not available ({type(exc).__name__}: {exc})"}


def _tsne(vectors: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    dims = min(TSNE_PCA_DIMS, vectors.shape[1], len(vectors) - 1)
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(vectors)
    perplexity = min(TSNE_PERPLEXITY, max(5, (len(vectors) - 1) // 4))
    return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(reduced)


def evaluate_run(options: EvalOptions, log: Callable[[str], None] = print) -> dict:
    options = options.resolved()
    # A quick run writes its own files (evaluate_quick.*, tsne_quick.png): a smoke run
    # never overwrites the full report.
    suffix = ("_holdout" if options.holdout_model else "") + ("_quick" if options.quick else "")
    stem = f"evaluate{suffix}"
    started = time.perf_counter()
    result: dict = {
        "command": options.command,
        "mode": "quick" if options.quick else "full",
        "machine": machine_info(),
        "seed": options.seed,
        "label_mapping": {"file": datasets.LABEL_MAPPING_PATH.name},
        "synthetic_recipe": synthetic.describe(),
        "holdout_model": options.holdout_model,
        "models": {},
    }
    mapping = datasets.label_mapping_load()
    result["label_mapping"]["version"] = mapping.version
    ev = eval_set_build(options, log)
    gallery_types = np.array([item.article_type for item in ev.gallery])
    result["sizes"] = {"gallery": len(ev.gallery), "copies": len(ev.copies), "synthetic": len(ev.synthetic_items),
                       "consumer": len(ev.consumer)}
    # How often a random gallery photo has an accepted type: precision@10 of a random ranking.
    result["chance_p10"] = {label: float(np.isin(gallery_types, types).mean()) for label, types in mapping.article_types.items()}
    if ev.consumer:
        labels = [c.label for c in ev.consumer]
        result["chance_p10_micro"] = float(np.mean([result["chance_p10"][label] for label in labels]))
        result["chance_p10_macro"] = float(np.mean([result["chance_p10"][label] for label in sorted(set(labels))]))

    names = list(dict.fromkeys(options.models)) + ([BASELINE_NAME] if options.with_baseline else [])
    computed_vectors: dict[str, dict[str, np.ndarray]] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            encoder = encoder_for(name)
        except Exception as exc:  # noqa: BLE001 - e.g. missing weights: report, go on with the others
            log(f"{name}: skipped ({exc})")
            result["models"][name] = {"skipped": str(exc)}
            continue
        log(f"== {encoder.description}")
        if encoder.derive is not None and encoder.base in computed_vectors:
            # Same pixels, same backbone: only the head runs (identical to embed(), see the tests).
            vectors = {k: encoder.derive(v) if len(v) else np.zeros((0, encoder.dim), np.float32)
                       for k, v in computed_vectors[encoder.base].items()}
            computed = 0
            log(f"  vectors from the {encoder.base} vectors through the head (frozen backbone)")
        else:
            vectors, computed = _encode_all(encoder, ev, options, log)
        computed_vectors[name] = vectors
        queries = {k: vectors[k] for k in ("copies", "synthetic", "consumer")}
        entry: dict = {"description": encoder.description, "dim": encoder.dim, "encoded_now": computed,
                       "cache": str(options.cache_dir / encoder.name / f"{encoder.fingerprint}.sqlite3")}
        exact = {k: exact_top_k(q, vectors["gallery"], TOP_K) if len(q) else np.zeros((0, TOP_K), int) for k, q in queries.items()}
        entry["exact"] = _metrics(ev, exact, gallery_types, mapping)
        entry["exact_query_ms"] = _exact_latency(vectors["gallery"], queries)
        if options.with_index:
            index_rankings, info = _index_rankings(vectors["gallery"], queries, log)
            entry["index"] = _metrics(ev, index_rankings, gallery_types, mapping)
            # How much of the exact top 10 the index returned, on real vectors and queries.
            info["neighbour_recall_at_10"] = {
                k: neighbour_recall(index_rankings[k], exact[k], 10) for k in queries if len(queries[k])
            }
            entry["index_info"] = info
        if options.with_map and (name == names[0] or name == BASELINE_NAME):
            coords = _tsne(vectors["gallery"], options.seed)
            png = options.out_dir / (f"tsne{suffix}.png" if name == names[0] else f"tsne_{name}{suffix}.png")
            plots.embedding_map(coords, gallery_types.tolist(), png,
                                f"t-SNE of {len(coords):,} catalogue photos, {encoder.description}; colour = articleType")
            entry["map_png"] = str(png)
        if "category" in entry["exact"]:
            rows = sorted(entry["exact"]["category"]["per_label"].items())
            plots.recall_bars([(k, v["p10"]) for k, v in rows], options.out_dir / f"category_p10_{name}{suffix}.png",
                              f"precision@10 of the consumer label's articleTypes, {name} (exact search)")
        entry["seconds"] = time.perf_counter() - t0
        result["models"][name] = entry
        _log_model(name, entry, log)

    log("== duplicate detector")
    if options.with_duplicates:
        result["duplicate_detector"] = duplicate_detector_section(options)
    else:
        result["duplicate_detector"] = {"skipped": "duplicate detector: not run (--no-duplicates)"}
    log(_duplicates_line(result["duplicate_detector"]))
    result["seconds"] = time.perf_counter() - started
    if options.holdout_model:
        _record_holdout_metrics(options, result, log)
    json_path = options.json_path or options.out_dir / f"{stem}.json"
    json_write(json_path, result)
    json_path.with_suffix(".md").write_text(evaluate_markdown(result))
    return result


def _log_model(name: str, entry: dict, log) -> None:
    for mode in ("exact", "index"):
        m = entry.get(mode)
        if not m:
            continue
        cat = m.get("category", {})
        log(
            f"  {name} [{mode}] copies R@1 {m['copies']['r1']:.3f} R@10 {m['copies']['r10']:.3f}; "
            f"consumer-like R@1 {m['consumer_like']['r1']:.3f} R@10 {m['consumer_like']['r10']:.3f} "
            f"R@20 {m['consumer_like']['r20']:.3f}; category P@10 {fmt(cat.get('p10_micro'))} (macro {fmt(cat.get('p10_macro'))})"
        )


# ---------------------------------------------------------------------------- tables


def summary_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "search", "copies R@1", "copies R@10", "views R@1", "views R@10", "views R@20",
               "category P@10 (micro)", "category P@10 (macro)"]
    rows = []
    for name, entry in result["models"].items():
        if "skipped" in entry:
            rows.append([name, f"skipped: {entry['skipped']}"] + ["–"] * 7)
            continue
        for mode, label in (("exact", "exact (numpy)"), ("index", "pgvector HNSW")):
            m = entry.get(mode)
            if not m:
                continue
            cat = m.get("category", {})
            rows.append([name, label, fmt(m["copies"]["r1"]), fmt(m["copies"]["r10"]), fmt(m["consumer_like"]["r1"]),
                         fmt(m["consumer_like"]["r10"]), fmt(m["consumer_like"]["r20"]), fmt(cat.get("p10_micro")),
                         fmt(cat.get("p10_macro"))])
    if "chance_p10_micro" in result:
        rows.append(["random ranking", "–", "–", "–", "–", "–", "–", fmt(result["chance_p10_micro"]), fmt(result["chance_p10_macro"])])
    return headers, rows


def variant_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "search", "copy variant", "n", "R@1", "R@10"]
    rows = []
    for name, entry in result["models"].items():
        for mode in ("exact", "index"):
            for v, r in entry.get(mode, {}).get("copies", {}).get("per_variant", {}).items():
                rows.append([name, mode, v, str(r["n"]), fmt(r["r1"]), fmt(r["r10"])])
    return headers, rows


def label_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    names = [n for n, e in result["models"].items() if "exact" in e and "category" in e["exact"]]
    headers = ["label", "n", "accepted articleTypes share (chance)"]
    for n in names:
        headers += [f"{n} exact", f"{n} HNSW"]
    mapping = datasets.label_mapping_load()
    rows = []
    if not names:
        return headers, rows
    first = result["models"][names[0]]["exact"]["category"]["per_label"]
    for label in sorted(first):
        row = [f"{label} → {', '.join(mapping.article_types.get(label, ()))}", str(first[label]["n"]),
               fmt(result["chance_p10"].get(label))]
        for n in names:
            e = result["models"][n]
            row.append(fmt(e["exact"]["category"]["per_label"][label]["p10"]))
            row.append(fmt(e.get("index", {}).get("category", {}).get("per_label", {}).get(label, {}).get("p10")))
        rows.append(row)
    return headers, rows


def index_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "dim", "gallery rows", "HNSW build (s)", "index size", "query p50 (ms)", "query p95 (ms)", "ef_search",
               "recall@10 vs exact (copies / views / photos)", "exact numpy query p50 (ms)"]
    rows = []
    for name, entry in result["models"].items():
        info = entry.get("index_info")
        if info:
            rows.append([name, str(entry["dim"]), f"{result['sizes']['gallery']:,}", fmt(info["build_seconds"], 1),
                         f"{info['index_bytes'] / 2**20:.0f} MiB", fmt(info["query_latency_ms"]["p50"], 2),
                         fmt(info["query_latency_ms"]["p95"], 2), str(info["ef_search"]),
                         " / ".join(fmt(info.get("neighbour_recall_at_10", {}).get(k)) for k in ("copies", "synthetic", "consumer")),
                         fmt(entry.get("exact_query_ms", {}).get("p50"), 3)])
    return headers, rows


def _duplicates_line(d: dict) -> str:
    if "skipped" in d:
        return d["skipped"]
    line = (f"duplicate detector ({d.get('source')}): precision {fmt(d.get('precision'), 4)}, recall {fmt(d.get('recall'), 4)}"
            + (f" at threshold {d['threshold']}" if d.get("threshold") is not None else ""))
    if d.get("positives") is not None:
        line += f" ({d['positives']} positive pairs, {d.get('negatives')} negative pairs)"
    exact = d.get("exact_copies") or {}
    if exact.get("precision") is not None:
        line += f"; byte-identical listings: precision {fmt(exact['precision'], 4)}, recall {fmt(exact['recall'], 4)}"
    return line


def evaluate_markdown(result: dict) -> str:
    m, s = result["machine"], result["sizes"]
    parts = [
        f"# Retrieval quality ({result['mode']} run, {m['date_utc']})",
        "",
        f"Command: `{result.get('command')}`. Seed {result['seed']}. Machine: {m['cpu_count']} cores, load average "
        f"{m['load_average_1_5_15']}, commit {m.get('git_commit')}.",
        f"Gallery: {s['gallery']:,} catalogue photos. Queries: {s['copies']:,} copies, {s['synthetic']:,} synthetic "
        f"consumer-like views, {s['consumer']:,} consumer photos. Label mapping: {result['label_mapping']['file']} "
        f"(version {result['label_mapping']['version']})."
        + (f" Hold-out of `{result['holdout_model']}`: gallery and queries are products (and consumer photos of "
           f"contributors) that its training never saw." if result.get("holdout_model") else ""),
        "",
        md_table(*summary_rows(result)),
        "",
        "### Copies by variant",
        "",
        md_table(*variant_rows(result)),
        "",
        "### Consumer photos: precision@10 per label",
        "",
        md_table(*label_rows(result)),
        "",
        "### Index used for the HNSW rows",
        "",
        md_table(*index_rows(result)),
        "",
        "### Duplicate detector",
        "",
        _duplicates_line(result["duplicate_detector"]),
        "",
    ]
    return "\n".join(parts)


def evaluate_text(result: dict) -> str:
    return "\n".join([
        text_table(*summary_rows(result)), "", text_table(*variant_rows(result)), "", text_table(*label_rows(result)), "",
        text_table(*index_rows(result)), "",
        _duplicates_line(result["duplicate_detector"]),
    ])
