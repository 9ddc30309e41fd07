"""``manage.py evaluate_matching``: matching quality as a shopper sees it, on a model's hold-out.

    python manage.py evaluate_matching --holdout NAME --model efficientnet_lite0 --model NAME
    python manage.py evaluate_matching --holdout NAME --model NAME --record   # write the chosen
                                                     # colour weight and relevance floor into NAME

Reports: reports/matching.{json,md}. See lab/evaluation/matching.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab import datasets
from lab.cli import cache_dir, command_line, reports_dir
from lab.evaluation.matching import MatchingOptions, matching_run, matching_text
from visualsearch.embedding import EmbedderConfigError, available_models


class Command(BaseCommand):
    help = "Category, colour, instance and floor metrics of photo search on a fine-tuned model's hold-out."

    def add_arguments(self, parser):
        parser.add_argument("--holdout", required=True, help="the fine-tuned model whose hold-out split to score on")
        parser.add_argument("--model", action="append", default=[], help="a model to score (repeat); default: the hold-out model")
        parser.add_argument("--record", action="store_true", help="write the chosen colour weight and floor into each fine-tuned model")
        parser.add_argument("--out", type=Path, help="reports folder (default reports/)")
        parser.add_argument("--cache-dir", type=Path, help="embedding cache (default var/cache/evaluate)")
        parser.add_argument("--category-gate", type=float, action="append", default=[],
                            help="fix the category term's gate (repeat to choose among several; default: the rule's "
                                 "choice among matching.CATEGORY_GATES)")
        parser.add_argument("--catalog", type=Path, default=datasets.CATALOG_DIR)
        parser.add_argument("--consumer", type=Path, default=datasets.CONSUMER_DIR)

    def handle(self, *args, **opts):
        if not (opts["catalog"] / "labels.csv").exists():
            raise CommandError(f"No catalogue at {opts['catalog']} (../shared/data beside the repository).")
        models = tuple(opts["model"]) or (opts["holdout"],)
        unknown = [m for m in (*models, opts["holdout"]) if m not in available_models()]
        if unknown:
            raise CommandError(f"Unknown models {unknown}; available: {', '.join(available_models())}.")
        options = MatchingOptions(
            models=models, holdout_model=opts["holdout"], out_dir=reports_dir(opts["out"]),
            cache_dir=cache_dir(opts["cache_dir"], "evaluate"), record=opts["record"], command=command_line("evaluate_matching"),
            catalog_dir=opts["catalog"], consumer_dir=opts["consumer"],
            category_gates=tuple(opts["category_gate"]) or None,
        )
        try:
            result = matching_run(options, log=self.stdout.write)
        except EmbedderConfigError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("")
        self.stdout.write(matching_text(result))
        self.stdout.write(f"Reports: {options.out_dir / 'matching.json'}, {options.out_dir / 'matching.md'}")
