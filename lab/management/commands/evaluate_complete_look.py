"""``manage.py evaluate_complete_look``: coverage, complementarity and cost of "Complete the
look" over the catalogue in the database, and screenshots of product pages for review.

    python manage.py compute_looks                      # the looks first (make demo does it)
    python manage.py evaluate_complete_look             # every product, 100 timed computes, 10 screenshots
    python manage.py evaluate_complete_look --quick     # 300 products, 10 computes, 2 screenshots

Reports: reports/complete_look.{json,md} and reports/complete_look/<slug>.png
(complete_look_quick* for --quick). See lab/evaluation/complete_look.py.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from config.database import database_url_from_settings
from lab.benchmarks import gunicorn
from lab.cli import command_line, reports_dir
from lab.evaluation.complete_look import compute_cost, embedded_product_ids, looks_read, looks_score, screenshot_choice
from lab.reports import fmt, json_write, machine_info, md_table, text_table
from shop.models import Product
from visualsearch.selectors import active_model_name

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 900}
ROWS = [
    ("products", "products (active, embedded)"),
    ("own_look", "share with a look of their own"),
    ("any_look", "share whose page shows a look (own or borrowed)"),
    ("borrowed", "share showing a borrowed look"),
    ("suggestions", "suggestions shown"),
    ("complementary", "share of suggestions in another family than the product"),
    ("gender_suits", "share of suggestions of a suiting gender"),
]


def _screenshots(*, product_ids: list[int], folder: Path, log) -> list[str]:
    """Full product pages in Chromium against gunicorn (DEBUG on for the static files)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        log(f"no screenshots: Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
        return []
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **gunicorn.server_env(settings_module=settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"],
                              database_url=database_url_from_settings(connection.settings_dict)),
        "DJANGO_DEBUG": "1",
    }
    server = gunicorn.gunicorn_start(env_overrides=env, workers=1, cwd=Path(settings.BASE_DIR), log_path=folder / "gunicorn.log")
    # Read before Playwright starts: its loop makes Django refuse ORM calls in this thread.
    pages = [(p.slug, p.get_absolute_url()) for p in Product.objects.filter(id__in=product_ids).order_by("id")]
    paths = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport=VIEWPORT)
            for slug, url in pages:
                page.goto(server.url + url, wait_until="networkidle")
                path = folder / f"{slug[:80]}.png"
                page.screenshot(path=str(path), full_page=True)
                paths.append(str(path))
            browser.close()
    finally:
        server.stop()
    return paths


class Command(BaseCommand):
    help = (
        "Score 'Complete the look' over the catalogue in the database: share of products with a look (own, borrowed), "
        "share of suggestions in another family than the product, by family and by garment kind, gender, read and "
        "compute cost; screenshots of random product pages. Writes reports/complete_look.{json,md}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="300 products, 10 timed computes, 2 screenshots")
        parser.add_argument("--sample", type=int, default=100, help="looks recomputed one at a time to time them")
        parser.add_argument("--screenshots", type=int, default=10, help="random product pages showing a look (0: none)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--out", type=Path, help="report folder (default reports/)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, quick, sample, screenshots, seed, out, no_progress, **opts):
        if sample < 0 or screenshots < 0:
            raise CommandError("--sample and --screenshots must not be negative.")
        model_name = active_model_name()
        product_ids = embedded_product_ids(model_name=model_name)
        if not product_ids:
            raise CommandError(f"No active product has a {model_name} embedding: run `make demo` (or make looks) first.")
        if quick:
            product_ids, sample, screenshots = product_ids[:300], min(sample, 10), min(screenshots, 2)
        machine = machine_info()
        started = time.perf_counter()
        with tqdm(total=len(product_ids), unit="product", disable=no_progress or None) as bar:
            outcomes = looks_read(product_ids=product_ids, on_progress=bar.update)
        scores = looks_score(outcomes)
        scores["compute_ms"] = compute_cost(product_ids=product_ids, sample=sample, seed=seed)
        folder = reports_dir(out)
        stem = "complete_look_quick" if quick else "complete_look"
        chosen = screenshot_choice(outcomes, count=screenshots, seed=seed)
        shots = _screenshots(product_ids=chosen, folder=folder / stem, log=self.stdout.write) if chosen else []
        machine["load_average_at_end"] = machine_info()["load_average_1_5_15"]
        report = {
            "command": command_line("evaluate_complete_look"), "model": model_name, "seed": seed,
            "scores": scores, "screenshots": shots, "seconds": round(time.perf_counter() - started, 1), "machine": machine,
        }
        json_write(folder / f"{stem}.json", report)
        rows = [[label, fmt(scores[key])] for key, label in ROWS]
        family_rows = [
            [family, v["products"], fmt(v["own_look"]), fmt(v["any_look"]),
             ", ".join(f"{name} {count}" for name, count in v["suggested_families"].items()) or "-"]
            for family, v in scores["per_product_family"].items()
        ]
        kind_rows = [[kind, ", ".join(f"{name} {count}" for name, count in counts.items())] for kind, counts in scores["per_region_kind"].items()]
        read, cost = scores["read_ms"], scores["compute_ms"]
        cost_rows = [
            ["read, own look (median / p95)", f"{fmt(read['own_median'])} / {fmt(read['own_p95'])}"],
            ["read, borrowed look (median / p95)", f"{fmt(read['borrowed_median'])} / {fmt(read['borrowed_p95'])}"],
            [f"compute per product, {cost.get('sample', 0)} products (median / p95)",
             f"{fmt(cost.get('ms_median'))} / {fmt(cost.get('ms_p95'))}"],
        ]
        (folder / f"{stem}.md").write_text(
            f"# Complete the look\n\n`{report['command']}` on {machine['date_utc']}, model {model_name}, "
            f"load average {machine['load_average_1_5_15']} -> {machine['load_average_at_end']}, {report['seconds']} s.\n\n"
            + md_table(["metric", "value"], rows)
            + "\n\n## Per family of the product\n\n"
            + md_table(["family", "products", "own look", "any look", "suggestions from (top 5 families)"], family_rows)
            + "\n\n## Per kind of garment region\n\n"
            + md_table(["region", "suggestions from (top 5 families)"], kind_rows)
            + "\n\n## Cost (ms)\n\n" + md_table(["", "ms"], cost_rows)
            + "\n\n## Screenshots\n\n" + ("\n".join(f"* {path}" for path in shots) or "none") + "\n"
        )
        self.stdout.write(text_table(["metric", "value"], rows + cost_rows))
        self.stdout.write(text_table(["family", "products", "own", "any", "suggestions from"], family_rows))
        self.stdout.write(text_table(["region", "suggestions from"], kind_rows))
        self.stdout.write(f"report: {folder / stem}.json, .md; {len(shots)} screenshots in {folder / stem}/")
