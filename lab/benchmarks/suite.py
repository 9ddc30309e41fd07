"""``manage.py bench``: embedding throughput, nearest-neighbour speed, HTTP latency.

Each section writes the JSON and Markdown reports as soon as it finishes, so a long
full run (the 1M-vector point alone takes 15-25 minutes on 2 cores)
leaves everything measured so far on disk if it is stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from config.database import database_url_from_settings
from lab import plots
from lab.benchmarks import ann, gunicorn, pgindex
from lab.benchmarks.load import PLAN_PHOTOS, QUICK_WARMUP_SECONDS, WARMUP_SECONDS, traffic_plan, traffic_targets
from lab.benchmarks.locust_run import locust_run, plan_write
from lab.benchmarks.throughput import SIDE_BY_SIDE_IMAGES, SIDE_BY_SIDE_RUNS, throughput_bench
from lab.reports import fmt, json_write, machine_info, md_table, mib, text_table
from recommender.models import SimilarStrip
from visualsearch.embedding import DEFAULT_BATCH_SIZE, load_embedder
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name

SECTIONS = ("throughput", "http", "ann")
# Targets from the issues, checked in the report.
TARGET_HNSW_P50_MS_AT_1M = 10.0
TARGET_RECALL_AT_10 = 0.95
TARGET_SPEEDUP_VS_NUMPY = 20.0
# Issue 14's targets through gunicorn, one user: similar items, and a photo searched once.
TARGET_SIMILAR_P50_MS = 10.0
TARGET_SEARCH_IMAGE_P50_MS = 25.0


@dataclass
class BenchOptions:
    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    sizes: tuple[int, ...] | None = None
    batch_sizes: tuple[int, ...] | None = None
    pipeline_batch_sizes: tuple[int, ...] | None = None
    throughput_images: int | None = None
    backend_runs: int | None = None
    backend_images: int | None = None
    http_seconds: float | None = None
    http_clients: int = 4
    seed: int = 0
    out_dir: Path = Path("reports")
    json_path: Path | None = None
    vectors: str = "gaussian"  # or "clustered": see ann.vector_model_clustered
    fallback_image_paths: list[str] = field(default_factory=list)
    photo_paths: list[str] = field(default_factory=list)

    def ann_config(self) -> ann.AnnConfig:
        from django.conf import settings

        if self.quick:
            sizes, queries, numpy_q, bt_q, pg_q, filt = (10_000,), 100, 20, 5, 3, 30
        else:
            sizes, queries, numpy_q, bt_q, pg_q, filt = (10_000, 100_000, 1_000_000), 1000, 100, 20, 10, 200
        return ann.AnnConfig(
            sizes=self.sizes or sizes, queries=queries, numpy_queries=numpy_q, balltree_queries=bt_q,
            pg_exact_queries=pg_q, filter_queries=filt, default_ef_search=settings.VISUALSEARCH_HNSW_EF_SEARCH,
            m=settings.VISUALSEARCH_HNSW_M, ef_construction=settings.VISUALSEARCH_HNSW_EF_CONSTRUCTION, seed=self.seed,
        )


def bench_run(options: BenchOptions, log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Run the chosen sections and write the reports after each one.

    An existing report of the same mode (quick/full) is updated rather than replaced: the
    sections run now replace theirs, the others are kept with the command and date that
    produced them (``sections_run``). So ``bench --only http`` refreshes one table.
    """
    import os

    from django.conf import settings

    # A quick run writes its own files, so a smoke run never overwrites the full report.
    stem = "bench_quick" if options.quick else "bench"
    json_path = options.json_path or options.out_dir / f"{stem}.json"
    mode = "quick" if options.quick else "full"
    result: dict = {
        "mode": mode,
        "machine": machine_info(),
        "settings": {
            "model": active_model_name(),
            "hnsw_m": settings.VISUALSEARCH_HNSW_M,
            "hnsw_ef_construction": settings.VISUALSEARCH_HNSW_EF_CONSTRUCTION,
            "hnsw_ef_search": settings.VISUALSEARCH_HNSW_EF_SEARCH,
        },
        "sections_run": {},
        "not_finished": [],
    }

    def save() -> None:
        merged = _existing(json_path, mode)
        for key, value in result.items():
            if key in ("sections_run", "not_finished"):
                continue
            if key == "ann" and "sizes" in merged.get("ann", {}):
                # Sizes measured now replace the same sizes of the same distribution; the others stay.
                fresh = {_size_key(res) for res in value.get("sizes", [])}
                kept = [res for res in merged["ann"]["sizes"] if _size_key(res) not in fresh]
                value = {**merged["ann"], **value, "sizes": sorted(kept + value.get("sizes", []), key=_size_key)}
            merged[key] = value
        merged.setdefault("sections_run", {}).update(result["sections_run"])
        if merged.get("ann", {}).get("sizes"):
            merged["ann"]["ef_search_for_recall_target"] = ann.pick_ef_search(merged["ann"]["sizes"], TARGET_RECALL_AT_10)
            plots.ann_tradeoff(merged["ann"]["sizes"], options.out_dir / f"{stem}_ann.png")
        ran = tuple(prefixes)
        merged["not_finished"] = [x for x in merged.get("not_finished", []) if not x.startswith(ran)] + result["not_finished"]
        merged["machine"]["load_average_at_save"] = [round(x, 2) for x in os.getloadavg()]
        json_write(json_path, merged)
        json_path.with_suffix(".md").write_text(bench_markdown(merged))

    # Report lines of an earlier run that this run supersedes ("ann 100,000", "http: failed ...").
    prefixes: list[str] = []
    for section in options.sections:
        if section == "ann":
            suffix = "" if options.vectors == "gaussian" else f" {options.vectors}"
            prefixes += [f"ann {n:,}{suffix}" for n in options.ann_config().sizes] + ["ann:"]
        else:
            prefixes.append(section)

    for section in options.sections:
        log(f"== {section}")
        started = time.perf_counter()
        key = section
        if section == "ann" and (options.sizes or options.vectors != "gaussian"):
            sizes = options.sizes or options.ann_config().sizes
            key = f"ann ({', '.join(f'{n:,}' for n in sizes)}{'' if options.vectors == 'gaussian' else ', ' + options.vectors})"
        result["sections_run"][key] = {
            "command": command,
            "date_utc": machine_info()["date_utc"],
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        }
        try:
            if section == "throughput":
                result["throughput"] = _throughput(options, log)
                plots.throughput_bars(result["throughput"], options.out_dir / f"{stem}_throughput.png")
            elif section == "http":
                result["http"] = _http(options, log)
            elif section == "ann":
                _ann(options, result, save, log)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            log(f"  {section} failed: {type(exc).__name__}: {exc}")
            message = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            result["not_finished"].append(f"{section}: failed with {message}")
            result.setdefault(section, {})["error"] = message
        result["sections_run"][key]["seconds"] = time.perf_counter() - started
        result["sections_run"][key]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        save()
    return _existing(json_path, mode)


def _size_key(res: dict) -> tuple:
    return (res.get("distribution", "gaussian") != "gaussian", res.get("distribution", "gaussian"), res["n"])


def _size_label(res: dict) -> str:
    dist = res.get("distribution", "gaussian")
    return f"{res['n']:,}" + ("" if dist == "gaussian" else f" ({dist})")


def _existing(path: Path, mode: str) -> dict:
    import json

    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            return {}
        if data.get("mode") == mode:
            return data
    return {}


def _throughput(options: BenchOptions, log) -> dict:
    batch_sizes = options.batch_sizes or ((8,) if options.quick else (1, 8, 32))
    # The pipeline at the default batch only (both backends, with and without the duplicate
    # check): at 1 / 8 / 32 it took 4 minutes of a full run for little news.
    pipeline_batch_sizes = options.pipeline_batch_sizes or (batch_sizes if options.quick else (DEFAULT_BATCH_SIZE,))
    limit = options.throughput_images or (32 if options.quick else 480)
    return throughput_bench(
        model_name=None, batch_sizes=batch_sizes, pipeline_batch_sizes=pipeline_batch_sizes, limit=limit,
        fallback_paths=options.fallback_image_paths, compare_without_duplicates=not options.quick,
        side_by_side_runs=options.backend_runs or (2 if options.quick else SIDE_BY_SIDE_RUNS),
        side_by_side_images=options.backend_images or SIDE_BY_SIDE_IMAGES, log=log,
    )


def real_vectors(limit: int = 20_000) -> np.ndarray:
    """Stored vectors of the active model (read-only), to shape the synthetic ones."""


    rows = ImageEmbedding.objects.filter(model_name=active_model_name()).order_by("id").values_list("vector", flat=True)[:limit]
    vectors = [np.asarray(v.to_numpy(), dtype=np.float32) for v in rows]
    return np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)


# Fewer real vectors than this cannot give 256 stable principal directions.
MIN_REAL_VECTORS = 512


def _ann(options: BenchOptions, result: dict, save: Callable[[], None], log) -> None:
    from django.db import connection


    config = options.ann_config()
    real = real_vectors()
    if len(real) >= MIN_REAL_VECTORS:
        model = ann.vector_model_clustered(real) if options.vectors == "clustered" else ann.vector_model_fit(real)
    elif options.vectors == "clustered":
        raise RuntimeError(f"--vectors clustered needs at least {MIN_REAL_VECTORS} stored embeddings (run make demo)")
    else:
        model = ann.vector_model_default(load_embedder().dim, seed=options.seed)
    result["ann"] = {"config": asdict(config), f"vectors_{options.vectors}": model.source, "dim": model.dim, "sizes": []}
    conn = pgindex.scratch_connect(connection.get_connection_params())
    try:
        dropped = pgindex.scratch_cleanup(conn)
        if dropped:
            log(f"  dropped scratch tables left by earlier runs: {', '.join(dropped)}")
        suffix = "" if options.vectors == "gaussian" else f" {options.vectors}"
        for n in config.sizes:
            log(f"-- {n:,} vectors of {model.dim} dimensions ({options.vectors})")
            # Pending until it finishes, so a stopped run says what it did not finish.
            result["not_finished"].append(f"ann {n:,}{suffix}")
            save()
            size_config = config
            if n > 100_000:  # one exact numpy query reads 5 GB at 1M: fewer samples
                size_config = ann.AnnConfig(**{**asdict(config), "numpy_queries": min(config.numpy_queries, 30)})
            res = ann.ann_bench_size(conn, model, n, size_config, log=log)
            res["distribution"] = options.vectors
            result["ann"]["sizes"].append(res)
            result["not_finished"].remove(f"ann {n:,}{suffix}")
            save()
    finally:
        conn.close()


# The API endpoints the HTTP section measures: report key -> (the locustfile's kind, how many
# of the plan's products it asks for; None: all of them).
HTTP_ENDPOINTS = {
    "similar": ("similar", None),
    # A shop's traffic is concentrated on its popular products: the same few strips, cached
    # (RECOMMENDER_SIMILAR_TTL) in each worker after the warm-up.
    "similar_popular": ("similar", 24),
    "search_image_single": ("search_single", None),
    "search_image": ("search", None),
}
# Measured on a second server with the precomputed strips and the strip cache off: every
# request searches.
HTTP_UNCACHED = {"similar_uncached": ("similar", None)}


def _http_runs(*, server_url: str, endpoints: dict, targets: dict, options: BenchOptions, seconds: float, stem: str, out: dict,
               log) -> None:
    for name, (kind, products) in endpoints.items():
        scope = targets if products is None else {**targets, "product_ids": targets["product_ids"][:products]}
        plan = traffic_plan(targets=scope, seed=options.seed, photo_paths=options.photo_paths, api_mix={kind: 1.0})
        plan_path = plan_write(path=options.out_dir / f"{stem}_http_{name}_plan.json", plan=plan)
        warmup_seconds = QUICK_WARMUP_SECONDS if options.quick else WARMUP_SECONDS
        runs = {}
        # The warm-up first: every worker loads the model on its first photo search.
        for tag, users, run_seconds in (("warmup", gunicorn.GUNICORN_WORKERS * 2, warmup_seconds), ("single_u1", 1, seconds),
                                        (f"concurrent_u{options.http_clients}", options.http_clients, seconds)):
            runs[tag] = locust_run(host=server_url, user_class="ApiClient", users=users, seconds=run_seconds,
                                   plan_path=plan_path, report_prefix=options.out_dir / f"{stem}_http_{name}_{tag}")
        single, loaded = runs["single_u1"], runs[f"concurrent_u{options.http_clients}"]
        out[name] = {"single_client": single, "concurrent": loaded, "products": len(scope["product_ids"])}
        log(
            f"  {name}: single user p50 {fmt(single['p50'], 0)} ms p95 {fmt(single['p95'], 0)} ms; "
            f"{options.http_clients} users p50 {fmt(loaded['p50'], 0)} ms p95 {fmt(loaded['p95'], 0)} ms "
            f"p99 {fmt(loaded['p99'], 0)} ms, {loaded['throughput_rps']:.1f} req/s, {loaded['errors']} errors"
        )


def _strips_stored() -> int:
    """Products whose precomputed similar strip (of the active model) the server can read."""
    return SimilarStrip.objects.filter(model_name=active_model_name()).count()


def _http(options: BenchOptions, log) -> dict:
    """Single-user and concurrent latency of the API endpoints, one at a time: Locust's
    ``ApiClient`` users (lab/benchmarks/locustfile.py) against gunicorn on loopback; then the
    similar items again on a server with their precomputed strips and cache off."""
    import os

    from django.conf import settings
    from django.db import connection

    targets = traffic_targets(seed=options.seed)
    if not targets["product_ids"]:
        return {"skipped": "no embedded active products in the database (run `make demo` first)"}
    seconds = options.http_seconds or (3.0 if options.quick else 15.0)
    stem = "bench_quick" if options.quick else "bench"
    out: dict = {
        "catalogue_products_embedded": targets["products_embedded"],
        "workers": gunicorn.GUNICORN_WORKERS,
        "torch_threads_per_worker": gunicorn.SERVER_TORCH_THREADS,
        "onnx_threads_per_worker": gunicorn.SERVER_ONNX_THREADS,
        "photos": min(len(options.photo_paths), PLAN_PHOTOS) or "generated",
        "load_generator": "locust (lab/benchmarks/locustfile.py, user class ApiClient)",
        "seconds": seconds,
        "similar_cache_ttl": settings.RECOMMENDER_SIMILAR_TTL,
        "similar_strips": settings.RECOMMENDER_SIMILAR_STRIPS,
        "similar_strips_stored": _strips_stored(),
    }
    env = gunicorn.server_env(
        settings_module=settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"],
        database_url=database_url_from_settings(connection.settings_dict),
    )
    servers = [(env, HTTP_ENDPOINTS, "gunicorn")]
    if settings.RECOMMENDER_SIMILAR_TTL > 0 or settings.RECOMMENDER_SIMILAR_STRIPS:
        uncached = {**env, "RECOMMENDER_SIMILAR_TTL": "0", "RECOMMENDER_SIMILAR_STRIPS": "0"}
        servers.append((uncached, HTTP_UNCACHED, "gunicorn_uncached"))
    for server_env, endpoints, log_name in servers:
        server = gunicorn.gunicorn_start(env_overrides=server_env, cwd=Path(settings.BASE_DIR),
                                         log_path=options.out_dir / f"{stem}_{log_name}.log")
        try:
            _http_runs(server_url=server.url, endpoints=endpoints, targets=targets, options=options, seconds=seconds,
                       stem=stem, out=out, log=log)
        finally:
            server.stop()
    return out


# ---------------------------------------------------------------------------- tables


def backend_rows(res: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["batch", "torch eager (img/s, median)", "ONNX Runtime (img/s, median)", "ONNX Runtime / torch (median of paired runs)",
               "torch min–max", "ONNX Runtime min–max"]
    rows = []
    for b, row in sorted(res.get("backends", {}).items(), key=lambda x: int(x[0])):
        t, o = row.get("torch", {}), row.get("onnx", {})
        ratio = row.get("onnx_to_torch_paired_ratio")
        rows.append([b, fmt(t.get("median"), 1), fmt(o.get("median"), 1), "–" if ratio is None else f"{ratio:.2f}×",
                     f"{fmt(t.get('min'), 1)}–{fmt(t.get('max'), 1)}", f"{fmt(o.get('min'), 1)}–{fmt(o.get('max'), 1)}"])
    return headers, rows


def _pipeline_sets(res: dict) -> list[tuple[str, dict]]:
    """(backend, by_batch) pairs; a report from before the backends has one unnamed set."""
    if res.get("by_backend"):
        return [(name, part.get("by_batch", {})) for name, part in res["by_backend"].items()]
    return [("", res.get("by_batch", {}))]


def throughput_rows(res: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["backend", "batch", "forward alone (img/s)", "embed() on decoded (img/s)", "pipeline (img/s)", "pipeline / forward",
               "forward inside the pipeline (img/s)", "pipeline waited on decode (s)", "on DB writes (s)",
               "pipeline without duplicate check (img/s)", "… / forward"]
    rows = []
    for backend, by_batch in _pipeline_sets(res):
        for b, row in sorted(by_batch.items(), key=lambda x: int(x[0])):
            ratio = row.get("pipeline_to_forward_ratio")
            no_dup = row.get("pipeline_no_duplicates_to_forward_ratio")
            rows.append([backend or "–", b, fmt(row["forward_images_per_second"], 1), fmt(row["embed_pil_images_per_second"], 1),
                         fmt(row.get("pipeline_images_per_second"), 1), "–" if ratio is None else f"{ratio:.0%}",
                         fmt(row.get("pipeline_forward_images_per_second"), 1),
                         fmt(row.get("pipeline_wait_decode_seconds"), 1), fmt(row.get("pipeline_wait_db_seconds"), 1),
                         fmt(row.get("pipeline_no_duplicates_images_per_second"), 1),
                         "–" if no_dup is None else f"{no_dup:.0%}"])
    return headers, rows


def ann_rows(sizes: list[dict], default_ef: int) -> tuple[list[str], list[list[str]]]:
    headers = ["vectors", "method", "p50 (ms)", "p95 (ms)", "recall@10", "build (s)", "index size", "speed-up vs numpy (p50)"]
    rows = []
    for res in sizes:
        n = _size_label(res)
        numpy_p50 = res.get("numpy_exact", {}).get("p50")
        ne = res.get("numpy_exact", {})
        rows.append([n, "exact numpy (float32)", fmt(ne.get("p50"), 2), fmt(ne.get("p95"), 2), fmt(ne.get("recall_at_10")), "–", "–", "1×"])
        bt = res.get("balltree", {})
        if "p50" in bt:
            rows.append([n, "scikit-learn BallTree", fmt(bt["p50"], 2), fmt(bt["p95"], 2), fmt(bt["recall_at_10"]),
                         fmt(bt["build_seconds"], 1), "–", _speedup(numpy_p50, bt["p50"])])
        else:
            rows.append([n, "scikit-learn BallTree", "–", "–", "–", "–", "–", f"skipped: {bt.get('skipped', '')}"])
        for kind in ("halfvec", "vector"):
            part = res.get(kind)
            if not part:
                continue
            build = part.get("build", {})
            for ef, row in sorted(part.get("hnsw", {}).items(), key=lambda x: int(x[0])):
                mark = " (default)" if int(ef) == default_ef else ""
                rows.append([n, f"pgvector HNSW {kind}, ef_search {ef}{mark}", fmt(row["p50"], 2), fmt(row["p95"], 2),
                             fmt(row["recall_at_10"]), fmt(build.get("seconds"), 1), mib(build.get("index_bytes")),
                             _speedup(numpy_p50, row["p50"])])
            if "pg_exact" in part:
                row = part["pg_exact"]
                rows.append([n, f"pgvector exact scan, {kind}", fmt(row["p50"], 2), fmt(row["p95"], 2),
                             fmt(row["recall_at_10"]), "–", "–", _speedup(numpy_p50, row["p50"])])
    return headers, rows


def _speedup(reference: float | None, value: float | None) -> str:
    if not reference or not value:
        return "–"
    return f"{reference / value:.1f}×"


def build_rows(sizes: list[dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["vectors", "type", "COPY load (s)", "HNSW build (s)", "index size", "table size"]
    rows = []
    for res in sizes:
        for kind in ("halfvec", "vector"):
            part = res.get(kind)
            if part and "build" in part:
                b = part["build"]
                rows.append([_size_label(res), f"{kind}({res['dim']})", fmt(part["load_seconds"], 1), fmt(b["seconds"], 1),
                             mib(b["index_bytes"]), mib(b["table_bytes"])])
    return headers, rows


def filtered_rows(sizes: list[dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["vectors", "hnsw.iterative_scan", "rows back (mean of 10)", "min", "queries with all 10", "recall@10", "p50 (ms)", "p95 (ms)"]
    rows = []
    for res in sizes:
        for mode, row in res.get("halfvec", {}).get("filtered", {}).items():
            rows.append([_size_label(res), mode, fmt(row["mean_results"], 1), str(row["min_results"]), f"{row['full_share']:.0%}",
                         fmt(row["recall_at_10"]), fmt(row["p50"], 2), fmt(row["p95"], 2)])
    return headers, rows


def http_rows(res: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["endpoint", "clients", "requests", "errors", "p50 (ms)", "p95 (ms)", "p99 (ms)", "throughput (req/s)"]
    names = {
        "similar": "GET /api/products/{id}/similar",
        "similar_popular": "GET /api/products/{id}/similar, 24 popular products (cached strips)",
        "similar_uncached": "GET /api/products/{id}/similar, precomputed strips and strip cache off",
        "search_image_single": "POST /api/search/image (detect=false)",
        "search_image": "POST /api/search/image (garments found, each searched)",
    }
    rows = []
    for key, label in names.items():
        for mode in ("single_client", "concurrent"):
            row = res.get(key, {}).get(mode)
            if row:
                # "users" since the Locust runs; reports of the hand-written generator said "clients".
                users = row.get("users", row.get("clients"))
                rows.append([label, str(users), str(row["requests"]), str(row["errors"]), fmt(row["p50"], 1),
                             fmt(row["p95"], 1), fmt(row["p99"], 1), fmt(row["throughput_rps"], 1)])
    return headers, rows


def targets(result: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target the issues set."""
    out = []
    for backend, tp in _pipeline_sets(result.get("throughput", {})):
        tag = f"{backend}, " if backend else ""
        for b, row in sorted(tp.items(), key=lambda x: int(x[0])):
            if "pipeline_to_forward_ratio" in row:
                r = row["pipeline_to_forward_ratio"]
                out.append((f"pipeline ≥ 90% of forward pass ({tag}batch {b})", f"{r:.0%}", "met" if r >= 0.9 else "missed"))
                if "pipeline_no_duplicates_to_forward_ratio" in row:
                    r = row["pipeline_no_duplicates_to_forward_ratio"]
                    out.append((f"… without the per-batch duplicate check ({tag}batch {b})", f"{r:.0%}", "met" if r >= 0.9 else "missed"))
    agreement = result.get("throughput", {}).get("agreement", {})
    if "min_cosine" in agreement:
        c = agreement["min_cosine"]
        out.append(("torch vs ONNX Runtime: cosine ≥ 0.9999 per image", f"min {c:.6f} ({agreement['images']} images)",
                    "met" if c >= 0.9999 else "missed"))
    http = result.get("http", {})
    for key, label, limit in (("similar", "GET similar p50 ≤ 10 ms (single client)", TARGET_SIMILAR_P50_MS),
                              ("search_image_single", "POST search/image, one search, p50 ≤ 25 ms (single client)",
                               TARGET_SEARCH_IMAGE_P50_MS)):
        row = http.get(key, {}).get("single_client")
        if row and row.get("p50") is not None:
            out.append((label, f"{row['p50']:.1f} ms", "met" if row["p50"] <= limit else "missed"))
    default_ef = str(result.get("settings", {}).get("hnsw_ef_search", 100))
    for res in result.get("ann", {}).get("sizes", []):
        if res["n"] < 1_000_000:
            continue
        hnsw = res.get("halfvec", {}).get("hnsw", {})
        numpy_p50 = res.get("numpy_exact", {}).get("p50")
        for ef, row in sorted(hnsw.items(), key=lambda x: int(x[0])):
            tag = f"{_size_label(res)}, ef_search {ef}" + (" (default)" if ef == default_ef else "")
            ok = row["p50"] <= TARGET_HNSW_P50_MS_AT_1M and row["recall_at_10"] >= TARGET_RECALL_AT_10
            speed = numpy_p50 / row["p50"] if numpy_p50 else None
            ok = ok and speed is not None and speed >= TARGET_SPEEDUP_VS_NUMPY
            out.append((f"HNSW p50 ≤ 10 ms, recall@10 ≥ 0.95, ≥ 20× numpy ({tag})",
                        f"{row['p50']:.2f} ms, {row['recall_at_10']:.3f}, {fmt(speed, 0)}×", "met" if ok else "missed"))
    return out


def bench_markdown(result: dict) -> str:
    m = result["machine"]
    parts = [
        f"# Benchmarks ({result['mode']} run, {m['date_utc']})",
        "",
        f"Machine: {m['cpu_count']} cores ({m['cpu_model']}), {m.get('memory_gib')} GiB, torch threads "
        f"{m.get('torch_threads')}, load average at start {m['load_average_1_5_15']} (shared machine). Commit {m.get('git_commit')}.",
        "",
        md_table(["section", "command", "date", "load average (start → end)", "seconds"],
                 [[k, f"`{v.get('command')}`", v.get("date_utc", ""), f"{v.get('load_average_at_start')} → {v.get('load_average_at_end')}",
                   fmt(v.get("seconds"), 0)] for k, v in result.get("sections_run", {}).items()]),
        "",
    ]
    if "throughput" in result:
        tp = result["throughput"]
        parts += ["## Embedding throughput", ""]
        if "by_batch" not in tp:
            parts += [f"Not measured: {tp.get('skipped') or tp.get('error')}", ""]
        else:
            parts += [
                f"{tp['model']} on {tp['device']}, {tp['images']} images ({tp['source']}). Decode alone "
                f"{tp['decode_images_per_second']:.0f} images/s, preprocess alone {tp['preprocess_images_per_second']:.0f} images/s (one thread).",
                "",
            ]
            if tp.get("backends"):
                some = next(iter(tp["backends"].values()))
                parts += [
                    f"### Inference backends (torch threads {tp.get('torch_threads')}, ONNX Runtime intra-op threads "
                    f"{tp.get('onnx_threads')}; {some['runs']} alternating runs of {some['images_per_run']} images per backend and batch)",
                    "",
                    md_table(*backend_rows(tp)),
                    "",
                ]
            parts += ["### Pipeline (`embed_catalog`) against the forward pass", "", md_table(*throughput_rows(tp)), ""]
    if "http" in result:
        parts += ["## HTTP (gunicorn on 127.0.0.1)", ""]
        if "similar" not in result["http"]:
            parts += [f"Not measured: {result['http'].get('skipped') or result['http'].get('error')}", ""]
        else:
            h = result["http"]
            onnx = f" and {h['onnx_threads_per_worker']} ONNX Runtime threads" if h.get("onnx_threads_per_worker") else ""
            parts += [f"{h['workers']} sync workers with {h.get('torch_threads_per_worker')} torch thread{onnx} each, "
                      f"{h['catalogue_products_embedded']} embedded products, k = 12; after a warm-up, Locust users "
                      f"(ApiClient, lab/benchmarks/locustfile.py) for {fmt(h.get('seconds'), 0)} s each: one user "
                      f"(sequential requests), then several at once. Similar items ask for {h['similar'].get('products', 500)} "
                      f"products uniformly at random, or for 24 only (a popular page: their strips cached after "
                      f"the warm-up), then on a second server with the precomputed strips and the strip cache off "
                      f"(every request searches); precomputed strips read: {h.get('similar_strips', False)} "
                      f"({h.get('similar_strips_stored', 0)} stored for the active model); "
                      f"strip cache TTL {fmt(h.get('similar_cache_ttl'), 0)} s, per worker without REDIS_URL.", "",
                      md_table(*http_rows(h)), ""]
    if "sizes" in result.get("ann", {}):
        a = result["ann"]
        default_ef = result["settings"]["hnsw_ef_search"]
        sources = "; ".join(f"{k.removeprefix('vectors_')}: {v}" for k, v in a.items() if k.startswith("vectors"))
        parts += ["## Nearest-neighbour queries (k = 10)", "", f"Vectors: {a['dim']}-d synthetic. {sources}.", "",
                  md_table(*ann_rows(a["sizes"], default_ef)), "", "### Index build", "", md_table(*build_rows(a["sizes"])), "",
                  "### Filtered queries (filter matches 2% of rows, HNSW index path)", "", md_table(*filtered_rows(a["sizes"])), ""]
    tg = targets(result)
    if tg:
        parts += ["## Targets", "", md_table(["target", "measured", ""], [list(t) for t in tg]), ""]
    if result.get("not_finished"):
        parts += ["## Not finished", "", *[f"* {x}" for x in result["not_finished"]], ""]
    return "\n".join(parts)


def bench_text(result: dict) -> str:
    """The tables for the terminal."""
    out = []
    if result.get("throughput", {}).get("backends"):
        out += ["Inference backends (images/s)", text_table(*backend_rows(result["throughput"])), ""]
    if "by_batch" in result.get("throughput", {}):
        out += ["Embedding throughput", text_table(*throughput_rows(result["throughput"])), ""]
    if "similar" in result.get("http", {}):
        out += ["HTTP", text_table(*http_rows(result["http"])), ""]
    if result.get("ann", {}).get("sizes"):
        sizes = result["ann"]["sizes"]
        out += ["Nearest neighbours (k=10)", text_table(*ann_rows(sizes, result["settings"]["hnsw_ef_search"])), "",
                "Index build", text_table(*build_rows(sizes)), "", "Filtered (2% of rows)", text_table(*filtered_rows(sizes)), ""]
    tg = targets(result)
    if tg:
        out += ["Targets", text_table(["target", "measured", ""], [list(t) for t in tg]), ""]
    return "\n".join(out)
