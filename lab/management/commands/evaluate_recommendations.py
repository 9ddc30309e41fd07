"""Simulated sessions over the catalogue in the database: does "Recommended for you" follow
each interest? Before (the mean vector) and after (interests kept apart)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from lab.cli import command_line, reports_dir
from lab.evaluation.recommendations import (
    METHODS,
    catalogue_read,
    session_examples,
    sessions_score,
    sessions_simulate,
)
from lab.reports import fmt, json_write, machine_info, md_table, text_table
from recommender.selectors import RECOMMENDED_DEFAULT_K
from visualsearch.selectors import active_model_name

ROWS = [
    ("on_interest", "share of the list in a viewed category"),
    ("coverage", "share of viewed categories in the list"),
    ("all_covered", "sessions with every viewed category in the list"),
    ("last_in_top3", "sessions with the last viewed category in the first 3"),
    ("on_interest_parent", "share of the list in a viewed parent category"),
    ("coverage_parent", "share of viewed parent categories in the list"),
    ("near_identical_adjacent", "near-identical neighbours per list"),
    ("mean_length", "products per list"),
    ("empty", "empty lists"),
    ("ms_median", "ms per list, median"),
    ("ms_p95", "ms per list, p95"),
]


class Command(BaseCommand):
    help = (
        "Simulate visitors who view 2-4 categories in a row over the catalogue in the database (make demo) and score "
        "'Recommended for you' before (mean of the viewed vectors) and after (one search per interest, interleaved): "
        "share of the list in a viewed category, share of viewed categories in the top k. Writes reports/recommendations.{json,md}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sessions", type=int, default=500, help="simulated visitors (default 500)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--k", type=int, default=RECOMMENDED_DEFAULT_K, help="list length scored (default 12)")
        parser.add_argument("--min-products", type=int, default=3, help="categories with fewer embedded products take no part")
        parser.add_argument("--quick", action="store_true", help="60 sessions, reports/recommendations_quick.*")
        parser.add_argument("--out", type=Path, help="report folder (default reports/)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, sessions, seed, k, min_products, quick, out, no_progress, **opts):
        if quick:
            sessions = min(sessions, 60)
        if sessions < 1 or k < 1:
            raise CommandError("--sessions and --k must be positive.")
        catalogue = catalogue_read()
        if not catalogue.category_of:
            raise CommandError(f"No active product has a {active_model_name()} embedding: run `make demo` (or make embed) first.")
        try:
            simulated = sessions_simulate(catalogue, n=sessions, seed=seed, min_products=min_products)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        machine = machine_info()
        started = time.perf_counter()
        with tqdm(total=len(simulated), unit="session", disable=no_progress or None) as bar:
            results = sessions_score(simulated, catalogue, k=k, on_progress=bar.update)
        machine["load_average_at_end"] = machine_info()["load_average_1_5_15"]
        report = {
            "command": command_line("evaluate_recommendations"),
            "model": active_model_name(),
            "sessions": len(simulated),
            "seed": seed,
            "k": k,
            "min_products": min_products,
            "catalogue": {
                "products": len(catalogue.category_of),
                "categories": len(catalogue.by_category),
                "categories_in_sessions": sum(1 for p in catalogue.by_category.values() if len(p) >= min_products),
            },
            "methods": results,
            "examples": session_examples(simulated, catalogue, k=k),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": machine,
        }
        folder = reports_dir(out)
        stem = "recommendations_quick" if quick else "recommendations"
        json_write(folder / f"{stem}.json", report)
        headers = ["metric", *METHODS]
        rows = [[label, *(fmt(results[name][key]) for name in METHODS)] for key, label in ROWS]
        for size in sorted({s for r in results.values() for s in r["coverage_by_categories_viewed"]}):
            rows.append(
                [f"share of viewed categories in the list, {size} viewed", *(fmt(results[n]["coverage_by_categories_viewed"][size]) for n in METHODS)]
            )
        (folder / f"{stem}.md").write_text(
            f"# Recommended for you: simulated sessions\n\n`{report['command']}` on {machine['date_utc']}, model "
            f"{report['model']}, {report['catalogue']['products']} products in {report['catalogue']['categories']} categories "
            f"({report['catalogue']['categories_in_sessions']} with {min_products}+ products take part); {len(simulated)} "
            f"sessions, seed {seed}, top {k}; load average {machine['load_average_1_5_15']} -> {machine['load_average_at_end']}.\n\n"
            + md_table(headers, rows)
            + "\n\n## Examples (categories of the lists)\n\n"
            + "\n".join(
                f"* viewed {' → '.join(e['viewed'])}\n  * before: {', '.join(e['before'])}\n  * after: {', '.join(e['after'])}"
                for e in report["examples"]
            )
            + "\n"
        )
        self.stdout.write(text_table(headers, rows))
        self.stdout.write(f"{len(simulated)} sessions (seed {seed}) in {report['seconds']} s; report: {folder / stem}.json, .md")
