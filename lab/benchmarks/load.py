"""``manage.py load_test``: a bounded load test of the storefront and the API with Locust.

gunicorn (``lab/benchmarks/gunicorn.py``: loopback only, a free port, stopped at the end)
serves the database the command itself uses. Locust (``lab/benchmarks/locustfile.py``, user
class ``Shopper``: one visitor per user, its session cookie kept) sends a seeded mix of

* ``product``: product pages (``/products/<slug>/``), each with its "visually similar" strip
  (an HNSW query) and a session write (recently viewed);
* ``listing``: filtered listing pages (category, gender, price band, sort, sometimes page 2);
* ``search``: photo searches, ``POST /api/search/image`` (CNN forward pass + HNSW query),
  with consumer photos of ``clothing_dataset_cc0`` when present, else generated JPEGs;
* ``similar`` (off by default; ``--mix``): ``GET /api/products/{id}/similar``;

for a fixed time at each number of users, and reports throughput, p50/p95/p99 and errors
(any non-2xx or failed request), overall and per kind, and the level at which latency starts
to climb. What the traffic writes to the database is what any shopper's would: sessions, and
each photo search kept as a look (``visualsearch.looks``: the shrunk photo, expired after
``VISUALSEARCH_SEARCH_RETENTION_HOURS`` by the periodic clean-up).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from config.database import database_url_from_settings
from lab.benchmarks import gunicorn
from lab.benchmarks.locust_run import locust_run, plan_write
from lab.reports import fmt, json_write, machine_info, md_table, text_table
from shop.models import Category, Product
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name

# The storefront mix measured since 2026-11-29 (docs/benchmarks.md), kept so that runs compare.
DEFAULT_MIX = {"product": 0.5, "listing": 0.3, "search": 0.2}
# The locustfile's kinds, repeated: importing it would import Locust, which patches the
# standard library for gevent, into the Django process.
KINDS = ("product", "listing", "search", "similar")
DEFAULT_LEVELS = (1, 4, 8, 16)
DEFAULT_SECONDS = 30.0
QUICK_LEVELS = (2,)
QUICK_SECONDS = 3.0
# Latency "starts to climb" at the first level whose p50 exceeds the fewest-users level's p50
# by this factor: below it the difference is within what one run to the next shows on the
# shared box (docs/benchmarks.md: 15.5 vs 11.7 ms single-client p50 on two days).
CLIMB_FACTOR = 1.5
# The warm-up loads the CNN in every gunicorn worker (the first photo search of a worker
# takes seconds) and fills the page caches; its numbers are not reported.
WARMUP_SECONDS = 10.0
QUICK_WARMUP_SECONDS = 4.0
WARMUP_MIX = {"product": 1.0, "listing": 1.0, "search": 2.0}
# Products and listing query strings in a plan: enough that caches do not make every request
# a repeat, few enough that the plan stays a small file.
PLAN_PRODUCTS = 500
PLAN_LISTINGS = 200
# Photos uploaded by the searches (a fixed sample of clothing_dataset_cc0, lab/cli.py).
PLAN_PHOTOS = 16


@dataclass
class LoadOptions:
    quick: bool = False
    users: tuple[int, ...] | None = None  # concurrency levels
    seconds: float | None = None  # per level
    workers: int = gunicorn.GUNICORN_WORKERS
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0
    rate_limits: bool = False  # keep the API's per-client rate limits (off: one client IP is all the traffic)
    photo_paths: list[str] = field(default_factory=list)
    out_dir: Path = Path("reports")
    json_path: Path | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)

    def levels(self) -> tuple[int, ...]:
        return self.users or (QUICK_LEVELS if self.quick else DEFAULT_LEVELS)

    def duration(self) -> float:
        return self.seconds or (QUICK_SECONDS if self.quick else DEFAULT_SECONDS)

    def stem(self) -> str:
        return "load_quick" if self.quick else "load"


def traffic_targets(*, seed: int, limit: int = PLAN_PRODUCTS) -> dict:
    """Product slugs and ids (embedded, active), listing query strings and the catalogue's size."""
    embedded = ImageEmbedding.objects.filter(model_name=active_model_name(), product__status=Product.Status.ACTIVE)
    products = sorted(Product.objects.filter(id__in=embedded.values("product_id")).values_list("slug", "id"))
    rng = random.Random(seed)
    rng.shuffle(products)
    categories = list(
        Category.objects.filter(products__status=Product.Status.ACTIVE).values_list("slug", flat=True).distinct()
    )
    categories.sort()
    genders = sorted({g for g in Product.objects.values_list("gender", flat=True).distinct() if g})
    prices = sorted(Product.objects.filter(status=Product.Status.ACTIVE).values_list("price", flat=True)[:5000])
    listings = []
    for i in range(PLAN_LISTINGS):
        params: dict[str, str] = {}
        if categories and i % 4 != 3:
            params["category"] = rng.choice(categories)
        if genders and i % 3 == 0:
            params["gender"] = rng.choice(genders)
        if prices and i % 2 == 0:
            low = prices[rng.randrange(len(prices) // 2)] if len(prices) > 1 else prices[0]
            params["min_price"] = str(Decimal(low).quantize(Decimal("1")))
            params["max_price"] = str(Decimal(low * 3).quantize(Decimal("1")))
        params["sort"] = rng.choice(["newest", "price_asc", "price_desc", "title"])
        if i % 5 == 4:
            params["page"] = "2"
        listings.append("/products/?" + urlencode(params))
    return {
        "slugs": [slug for slug, _ in products[:limit]],
        "product_ids": [pk for _, pk in products[:limit]],
        "listings": listings,
        "products_embedded": len(products),
        "categories": len(categories),
    }


def traffic_plan(*, targets: dict, seed: int, photo_paths: Sequence[str], mix: dict[str, float] | None = None,
                 api_mix: dict[str, float] | None = None) -> dict:
    """The plan the locustfile reads: what to request, how often (``mix`` for its Shopper users,
    ``api_mix`` for its ApiClient users; the locustfile's defaults when None), from which seed."""
    plan = {
        "seed": seed,
        "slugs": targets["slugs"],
        "product_ids": targets["product_ids"],
        "listings": targets["listings"],
        "photos": [str(Path(p).resolve()) for p in photo_paths[:PLAN_PHOTOS]],
    }
    if mix is not None:
        plan["mix"] = mix
    if api_mix is not None:
        plan["api_mix"] = api_mix
    return plan


def latency_climb(*, levels: Sequence[dict], factor: float = CLIMB_FACTOR) -> dict | None:
    """Where latency starts to climb: the first level (by users) whose p50 exceeds ``factor``
    times the p50 of the level with the fewest users. ``users`` is None when none does;
    None when there are fewer than two levels with a p50."""
    measured = sorted((lv for lv in levels if lv.get("p50") is not None), key=lambda lv: lv["users"])
    if len(measured) < 2:
        return None
    base = measured[0]
    climbed = next((lv for lv in measured[1:] if lv["p50"] > factor * base["p50"]), None)
    return {
        "factor": factor,
        "baseline_users": base["users"],
        "baseline_p50": base["p50"],
        "users": climbed["users"] if climbed else None,
        "p50": climbed["p50"] if climbed else None,
    }


def sustained_level(*, levels: Sequence[dict]) -> dict | None:
    """The error-free level with the highest throughput, or None when every level had errors."""
    clean = [lv for lv in levels if lv["errors"] == 0 and lv["requests"] > 0]
    if not clean:
        return None
    best = max(clean, key=lambda lv: lv["throughput_rps"])
    return {k: best[k] for k in ("users", "throughput_rps", "p50", "p95", "p99", "errors", "requests", "seconds")}


def load_test_run(options: LoadOptions, log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Start gunicorn, warm it up, run Locust at each number of users, stop it; write and return the report."""
    from django.conf import settings
    from django.db import connection

    targets = traffic_targets(seed=options.seed)
    stem = options.stem()
    json_path = options.json_path or options.out_dir / f"{stem}.json"
    result: dict = {
        "mode": "quick" if options.quick else "full",
        "command": command,
        "machine": machine_info(),
        "load_generator": "locust (lab/benchmarks/locustfile.py, user class Shopper)",
        "gunicorn_workers": options.workers,
        "torch_threads_per_worker": gunicorn.SERVER_TORCH_THREADS,
        "onnx_threads_per_worker": gunicorn.SERVER_ONNX_THREADS,
        "rate_limits": "kept" if options.rate_limits else "off",
        "mix": options.mix,
        "seconds_per_level": options.duration(),
        "catalogue": {"products_embedded": targets["products_embedded"], "categories": targets["categories"]},
        "photos": "clothing_dataset_cc0" if options.photo_paths else "generated",
        "levels": [],
    }
    if not targets["slugs"]:
        result["skipped"] = "no embedded active products in the database (run `make embed` or `make demo` first)"
        _save(result, json_path)
        return result
    plan = traffic_plan(targets=targets, mix=options.mix, seed=options.seed, photo_paths=options.photo_paths)
    plan_path = plan_write(path=options.out_dir / f"{stem}_plan.json", plan=plan)
    warm_path = plan_write(path=options.out_dir / f"{stem}_warmup_plan.json", plan={**plan, "mix": WARMUP_MIX})
    result["plan"] = str(plan_path)
    env = {
        **gunicorn.server_env(settings_module=settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"],
                              database_url=database_url_from_settings(connection.settings_dict),
                              rate_limits=options.rate_limits),
        **options.env_overrides,
    }
    log(f"gunicorn: {options.workers} workers on 127.0.0.1; {targets['products_embedded']} embedded products; "
        f"mix {options.mix}; Locust, {options.duration():.0f} s per level {list(options.levels())}")
    server = gunicorn.gunicorn_start(env_overrides=env, workers=options.workers, cwd=Path(settings.BASE_DIR),
                                     log_path=options.out_dir / f"{stem}_gunicorn.log")
    try:
        warm = locust_run(host=server.url, user_class="Shopper", users=options.workers * 2,
                          seconds=QUICK_WARMUP_SECONDS if options.quick else WARMUP_SECONDS, plan_path=warm_path,
                          report_prefix=options.out_dir / f"{stem}_warmup")
        result["warmup"] = {"requests": warm["requests"], "errors": warm["errors"]}
        for users in options.levels():
            load_avg_start = [round(x, 2) for x in os.getloadavg()]
            level = locust_run(host=server.url, user_class="Shopper", users=users, seconds=options.duration(),
                               plan_path=plan_path, report_prefix=options.out_dir / f"{stem}_u{users}")
            level["load_average_at_start"] = load_avg_start
            level["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
            result["levels"].append(level)
            log(f"  {users} users: {level['requests']} requests, {level['throughput_rps']:.1f} req/s, "
                f"p50 {fmt(level['p50'], 0)} ms, p95 {fmt(level['p95'], 0)} ms, p99 {fmt(level['p99'], 0)} ms, "
                f"{level['errors']} errors")
            _save(result, json_path)  # a stopped run keeps the levels measured so far
    finally:
        server.stop()
    result["climb"] = latency_climb(levels=result["levels"])
    result["sustained"] = sustained_level(levels=result["levels"])
    _save(result, json_path)
    return result


def _save(result: dict, json_path: Path) -> None:
    json_write(json_path, result)
    json_path.with_suffix(".md").write_text(load_markdown(result))


def level_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["users", "seconds", "requests", "errors", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)"]
    rows = [[str(lv["users"]), fmt(lv["seconds"], 0), str(lv["requests"]), str(lv["errors"]), fmt(lv["throughput_rps"], 1),
             fmt(lv["p50"], 0), fmt(lv["p95"], 0), fmt(lv["p99"], 0)] for lv in result.get("levels", [])]
    return headers, rows


def kind_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["users", "kind", "requests", "errors", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)"]
    rows = []
    for lv in result.get("levels", []):
        for kind, row in lv.get("by_kind", {}).items():
            rows.append([str(lv["users"]), kind, str(row["requests"]), str(row["errors"]), fmt(row["throughput_rps"], 1),
                         fmt(row["p50"], 0), fmt(row["p95"], 0), fmt(row["p99"], 0)])
    return headers, rows


def climb_sentence(climb: dict | None) -> str:
    if climb is None:
        return "Latency climb: not measured (needs two levels)."
    base = f"{climb['baseline_users']}-user p50 {climb['baseline_p50']:.0f} ms"
    if climb["users"] is None:
        return f"Latency does not climb: no level's p50 exceeds {climb['factor']}× the {base}."
    return (f"Latency starts to climb at **{climb['users']} users**: p50 {climb['p50']:.0f} ms, more than "
            f"{climb['factor']}× the {base}.")


def load_markdown(result: dict) -> str:
    m = result["machine"]
    parts = [
        f"# Load test ({result['mode']} run, {m['date_utc']})", "",
        f"Command: `{result.get('command')}`. Machine: {m['cpu_count']} cores ({m['cpu_model']}), load average at start "
        f"{m['load_average_1_5_15']}. Load: {result['load_generator']}. gunicorn {result['gunicorn_workers']} sync workers, "
        f"{result['torch_threads_per_worker']} torch thread and {result.get('onnx_threads_per_worker', 'as many')} ONNX Runtime "
        f"threads each, rate limits {result['rate_limits']}; mix {result['mix']}; "
        f"{result['catalogue']['products_embedded']} embedded products; photos: {result['photos']}; "
        f"{result['seconds_per_level']:.0f} s per level.", "",
    ]
    if result.get("skipped"):
        return "\n".join([*parts, f"Not measured: {result['skipped']}", ""])
    parts += [md_table(*level_rows(result)), "", "Per kind:", "", md_table(*kind_rows(result)), ""]
    if "climb" in result:
        parts += [climb_sentence(result["climb"]), ""]
    if result.get("sustained"):
        s = result["sustained"]
        parts += [f"Sustained with zero errors: **{s['throughput_rps']:.1f} req/s** at {s['users']} users "
                  f"(p50 {fmt(s['p50'], 0)} ms, p95 {fmt(s['p95'], 0)} ms, p99 {fmt(s['p99'], 0)} ms).", ""]
    failures = [(lv["users"], f) for lv in result["levels"] for f in lv.get("failures", [])]
    if failures:
        parts += ["Failures:", ""] + [f"* {users} users, {f['kind']}: {f['error']} × {f['occurrences']}" for users, f in failures] + [""]
    if any(lv.get("locust_cpu_warning") for lv in result["levels"]):
        parts += ["Locust warned that its own process used over 90 % of a core: at those levels the load generator "
                  "limits the numbers as well as the server.", ""]
    parts += ["Locust's own reports per level: " + ", ".join(f"`{Path(lv['reports']['html']).name}`" for lv in result["levels"]), ""]
    return "\n".join(parts)


def load_text(result: dict) -> str:
    if result.get("skipped"):
        return f"Not measured: {result['skipped']}"
    lines = [text_table(*level_rows(result)), "", text_table(*kind_rows(result))]
    if "climb" in result:
        lines += ["", climb_sentence(result["climb"]).replace("**", "")]
    return "\n".join(lines)
