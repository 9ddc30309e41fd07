"""``manage.py load_test``: a bounded load test of the storefront and the API, mixed traffic.

gunicorn (``http_load.gunicorn_start``: loopback only, a free port, stopped at the end)
serves the database the command itself uses. Client threads, one visitor each (their
session cookie kept), send a seeded mix of

* ``product``: product pages (``/products/<slug>/``), each with its "visually similar" strip
  (an HNSW query) and a session write (recently viewed);
* ``listing``: filtered listing pages (category, gender, price band, sort, sometimes page 2);
* ``search``: photo searches, ``POST /api/search/image`` (CNN forward pass + HNSW query),
  with consumer photos of ``clothing_dataset_cc0`` when present, else generated JPEGs;

for a fixed time at each concurrency level, and reports throughput, p50/p95/p99 and errors
(any non-2xx or failed request), overall and per kind. Nothing is written but sessions.
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
from lab.benchmarks import http_load
from lab.reports import fmt, json_write, machine_info, md_table, text_table
from shop.models import Category, Product
from visualsearch.models import ImageEmbedding
from visualsearch.selectors import active_model_name

DEFAULT_MIX = {"product": 0.5, "listing": 0.3, "search": 0.2}
KINDS = tuple(DEFAULT_MIX)
# One torch thread per gunicorn worker (see bench.SERVER_TORCH_THREADS).
SERVER_TORCH_THREADS = 1


@dataclass
class LoadOptions:
    quick: bool = False
    clients: tuple[int, ...] | None = None  # concurrency levels
    seconds: float | None = None  # per level
    workers: int = http_load.GUNICORN_WORKERS
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0
    rate_limits: bool = False  # keep the API's per-client rate limits (off: one client IP is all the traffic)
    photo_paths: list[str] = field(default_factory=list)
    out_dir: Path = Path("reports")
    json_path: Path | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)

    def levels(self) -> tuple[int, ...]:
        return self.clients or ((2,) if self.quick else (1, 4, 8))

    def duration(self) -> float:
        return self.seconds or (3.0 if self.quick else 30.0)


def traffic_targets(*, seed: int, limit: int = 500) -> dict:
    """Product slugs (embedded, active), listing query strings and the catalogue's size."""


    embedded = ImageEmbedding.objects.filter(model_name=active_model_name(), product__status=Product.Status.ACTIVE)
    slugs = sorted(set(Product.objects.filter(id__in=embedded.values("product_id")).values_list("slug", flat=True)))
    rng = random.Random(seed)
    rng.shuffle(slugs)
    categories = list(
        Category.objects.filter(products__status=Product.Status.ACTIVE).values_list("slug", flat=True).distinct()
    )
    categories.sort()
    genders = sorted({g for g in Product.objects.values_list("gender", flat=True).distinct() if g})
    prices = sorted(Product.objects.filter(status=Product.Status.ACTIVE).values_list("price", flat=True)[:5000])
    listings = []
    for i in range(200):
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
    return {"slugs": slugs[:limit], "listings": listings, "products_embedded": len(slugs), "categories": len(categories)}


def mixed_requests(*, slugs: Sequence[str], listings: Sequence[str], photos: Sequence[bytes], mix: dict[str, float],
                   seed: int, n: int, k: int = 12) -> Callable[[int], http_load.Request]:
    """``make_request(i)`` for ``http_load.load_run``: the i-th request of a seeded mix."""
    kinds = [kind for kind in KINDS if mix.get(kind, 0) > 0]
    if "product" in kinds and not slugs:
        raise ValueError("no embedded active products to request")
    rng = random.Random(seed)
    sequence = rng.choices(kinds, weights=[mix[kind] for kind in kinds], k=n)
    bodies = [http_load.multipart_body({"k": str(k)}, {"image": ("photo.jpg", data, "image/jpeg")}) for data in photos]

    def make(i: int) -> http_load.Request:
        kind = sequence[i % n]
        if kind == "product":
            return http_load.Request("GET", f"/products/{slugs[(i * 7919) % len(slugs)]}/", label="product")
        if kind == "listing":
            return http_load.Request("GET", listings[(i * 104729) % len(listings)], label="listing")
        body, ctype = bodies[i % len(bodies)]
        return http_load.Request("POST", "/api/search/image", body=body, content_type=ctype, label="search")

    return make


def load_test_run(options: LoadOptions, log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Start gunicorn, warm it up, run each concurrency level, stop it; write and return the report."""
    from django.conf import settings
    from django.db import connection


    targets = traffic_targets(seed=options.seed)
    stem = "load_quick" if options.quick else "load"
    json_path = options.json_path or options.out_dir / f"{stem}.json"
    photos = [Path(p).read_bytes() for p in options.photo_paths[:16]] or [http_load.generated_photo(i) for i in range(4)]
    result: dict = {
        "mode": "quick" if options.quick else "full",
        "command": command,
        "machine": machine_info(),
        "gunicorn_workers": options.workers,
        "torch_threads_per_worker": SERVER_TORCH_THREADS,
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
    max_requests = 200_000
    make = mixed_requests(slugs=targets["slugs"], listings=targets["listings"], photos=photos, mix=options.mix,
                          seed=options.seed, n=max_requests)
    env = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": database_url_from_settings(connection.settings_dict),
        "VISUALSEARCH_TORCH_THREADS": str(SERVER_TORCH_THREADS),
        **({} if options.rate_limits else {
            "VISUALSEARCH_RATE_IMAGE_SEARCH": "off", "VISUALSEARCH_RATE_SIMILAR": "off", "VISUALSEARCH_RATE_SHOP_THE_LOOK": "off",
        }),
        **options.env_overrides,
    }
    log(f"gunicorn: {options.workers} workers on 127.0.0.1; {targets['products_embedded']} embedded products; "
        f"mix {options.mix}; {options.duration():.0f} s per level {list(options.levels())}")
    server = http_load.gunicorn_start(env_overrides=env, workers=options.workers, cwd=Path(settings.BASE_DIR),
                                      log_path=options.out_dir / f"{stem}_gunicorn.log")
    try:
        # Warm every worker: the first photo search loads the CNN, the first pages fill caches.
        search = mixed_requests(slugs=targets["slugs"], listings=targets["listings"], photos=photos, mix={"search": 1},
                                seed=options.seed, n=64)
        warm = http_load.load_run(port=server.port, make_request=search, clients=options.workers * 2, seconds=90,
                                  max_requests=options.workers * 4)
        warm_pages = http_load.load_run(port=server.port, make_request=make, clients=options.workers * 2, seconds=30,
                                        max_requests=options.workers * 10, keep_cookies=True)
        result["warmup_errors"] = warm["errors"] + warm_pages["errors"]
        for clients in options.levels():
            load_avg_start = [round(x, 2) for x in os.getloadavg()]
            started = time.perf_counter()
            level = http_load.load_run(port=server.port, make_request=make, clients=clients, seconds=options.duration(),
                                       max_requests=max_requests, keep_cookies=True)
            level["load_average_at_start"] = load_avg_start
            level["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
            level["wall_seconds"] = time.perf_counter() - started
            result["levels"].append(level)
            log(f"  {clients} clients: {level['requests']} requests in {level['seconds']:.1f} s, {level['throughput_rps']:.1f} req/s, "
                f"p50 {level['p50']:.0f} ms, p95 {level['p95']:.0f} ms, p99 {level['p99']:.0f} ms, {level['errors']} errors")
    finally:
        server.stop()
    clean = [lv for lv in result["levels"] if lv["errors"] == 0]
    if clean:
        best = max(clean, key=lambda lv: lv["throughput_rps"])
        result["sustained"] = {k: best[k] for k in ("clients", "throughput_rps", "p50", "p95", "p99", "errors", "requests", "seconds")}
    _save(result, json_path)
    return result


def _save(result: dict, json_path: Path) -> None:
    json_write(json_path, result)
    json_path.with_suffix(".md").write_text(load_markdown(result))


def level_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["clients", "seconds", "requests", "errors", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)"]
    rows = [[str(lv["clients"]), fmt(lv["seconds"], 1), str(lv["requests"]), str(lv["errors"]), fmt(lv["throughput_rps"], 1),
             fmt(lv["p50"], 1), fmt(lv["p95"], 1), fmt(lv["p99"], 1)] for lv in result.get("levels", [])]
    return headers, rows


def kind_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["clients", "kind", "requests", "errors", "req/s", "p50 (ms)", "p95 (ms)", "p99 (ms)"]
    rows = []
    for lv in result.get("levels", []):
        for kind, row in lv.get("by_label", {}).items():
            rows.append([str(lv["clients"]), kind, str(row["requests"]), str(row["errors"]), fmt(row["throughput_rps"], 1),
                         fmt(row["p50"], 1), fmt(row["p95"], 1), fmt(row["p99"], 1)])
    return headers, rows


def load_markdown(result: dict) -> str:
    m = result["machine"]
    parts = [
        f"# Load test ({result['mode']} run, {m['date_utc']})", "",
        f"Command: `{result.get('command')}`. Machine: {m['cpu_count']} cores ({m['cpu_model']}), load average at start "
        f"{m['load_average_1_5_15']}. gunicorn {result['gunicorn_workers']} sync workers, {result['torch_threads_per_worker']} "
        f"torch thread each, rate limits {result['rate_limits']}; mix {result['mix']}; {result['catalogue']['products_embedded']} "
        f"embedded products; photos: {result['photos']}; {result['seconds_per_level']:.0f} s per level.", "",
    ]
    if result.get("skipped"):
        return "\n".join([*parts, f"Not measured: {result['skipped']}", ""])
    parts += [md_table(*level_rows(result)), "", "Per kind:", "", md_table(*kind_rows(result)), ""]
    if result.get("sustained"):
        s = result["sustained"]
        parts += [f"Sustained with zero errors: **{s['throughput_rps']:.1f} req/s** at {s['clients']} clients "
                  f"(p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms, p99 {s['p99']:.0f} ms).", ""]
    return "\n".join(parts)


def load_text(result: dict) -> str:
    if result.get("skipped"):
        return f"Not measured: {result['skipped']}"
    return "\n".join([text_table(*level_rows(result)), "", text_table(*kind_rows(result))])
