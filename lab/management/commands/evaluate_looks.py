"""``manage.py evaluate_looks``: garment localisation and per-item search on multi-garment photos.

    python manage.py evaluate_looks --holdout NAME                 # the model NAME on its own hold-out
    python manage.py evaluate_looks --holdout NAME --model OTHER   # another model on NAME's hold-out
    python manage.py evaluate_looks --holdout NAME --quick         # 40 composites, 60 people, 60 consumer photos
    python manage.py evaluate_looks --holdout NAME --validation --seed 7   # the training side: choose settings here

Reports: reports/looks.{json,md}. See lab/evaluation/looks.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab import datasets
from lab.cli import command_line, reports_dir
from lab.evaluation.looks import DRAWINGS_PER_NOISE, LooksOptions, looks_run, looks_text
from lab.evaluation.matching import validation_consumer_of
from visualsearch.embedding import available_models


class Command(BaseCommand):
    help = "Measure shop-the-look: localisation recall/precision, per-item retrieval, single-garment photos, latency."

    def add_arguments(self, parser):
        parser.add_argument("--holdout", required=True, help="the fine-tuned model whose hold-out split to use")
        parser.add_argument("--model", help="the model that embeds (default: the hold-out model)")
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--composites", type=int, default=200)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path)
        parser.add_argument("--validation", action="store_true",
                            help="measure on the training side (training products, the validation contributors' photos)")

    def handle(self, *args, **opts):
        if not (datasets.CATALOG_DIR / "labels.csv").exists():
            raise CommandError(f"No catalogue at {datasets.CATALOG_DIR} (../shared/data beside the repository).")
        model = opts["model"] or opts["holdout"]
        if model not in available_models() or opts["holdout"] not in available_models():
            raise CommandError(f"Unknown model; available: {', '.join(available_models())}.")
        quick = opts["quick"]
        options = LooksOptions(
            model=model, holdout_model=opts["holdout"], composites=40 if quick else opts["composites"],
            people=60 if quick else 300, consumer=60 if quick else 300, latency_photos=20 if quick else 40,
            drawings=10 if quick else DRAWINGS_PER_NOISE,
            seed=opts["seed"], out_dir=reports_dir(opts["out"]), command=command_line("evaluate_looks"),
            validation=opts["validation"],
        )
        if options.validation and validation_consumer_of(options.holdout_model) is None:
            raise CommandError(f"{options.holdout_model} records no validation split (an ImageNet backbone?): use its hold-out.")
        result = looks_run(options, log=self.stdout.write)
        self.stdout.write("")
        self.stdout.write(looks_text(result))
