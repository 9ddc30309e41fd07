"""``manage.py evaluate``: retrieval quality on the shared data, against a colour + HOG baseline.

    python manage.py evaluate --quick                 # small seeded subsets, under 2 minutes
    python manage.py evaluate                         # everything (first run embeds ~15k images)
    python manage.py evaluate --model resnet50        # another model beside the active one
    python manage.py evaluate --model efficientnet_lite0-triplet-v4 --holdout efficientnet_lite0-triplet-v4
                                                      # a fine-tuned model against the active one, on its hold-out

Vectors are cached under var/cache/evaluate/<model>/, so re-runs only search. Reports go
to reports/ (evaluate.json, evaluate.md, tsne.png; evaluate_quick.* and tsne_quick.png for
--quick). See lab/evaluation/quality.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab import datasets
from lab.cli import cache_dir, command_line, reports_dir
from lab.evaluation.quality import EvalOptions, evaluate_run, evaluate_text
from visualsearch.embedding import available_models
from visualsearch.embedding.config import finetuned_models
from visualsearch.selectors import active_model_name


class Command(BaseCommand):
    help = "Measure retrieval quality (copies, consumer-like views, consumer photo categories), exact and through pgvector."

    def add_arguments(self, parser):
        parser.add_argument("--model", action="append", choices=available_models(), default=[],
                            help="also evaluate this model (repeatable); the active model is always included")
        parser.add_argument("--holdout", metavar="MODEL", choices=finetuned_models(),
                            help="score on the hold-out split of this fine-tuned model (products and consumer-photo "
                                 "contributors its training never saw); reports go to evaluate_holdout.*")
        parser.add_argument("--quick", action="store_true", help="small seeded subsets (CI smoke test)")
        parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/evaluate.json)")
        parser.add_argument("--out", type=Path, help="reports folder (default reports/)")
        parser.add_argument("--cache-dir", type=Path, help="embedding cache (default var/cache/evaluate)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--gallery-size", type=int, help="catalogue photos in the gallery (default: all; quick 600)")
        parser.add_argument("--copies", type=int, help="copy queries (default: all 1,076; quick 120)")
        parser.add_argument("--synthetic", type=int, help="synthetic consumer-like views (default 1,000; quick 60)")
        parser.add_argument("--consumer-per-label", type=int, help="consumer photos per label (default: all; quick 6)")
        parser.add_argument("--no-baseline", action="store_true", help="leave out the colour + HOG baseline")
        parser.add_argument("--no-index", action="store_true", help="exact search only, no pgvector index")
        parser.add_argument("--no-map", action="store_true", help="skip the t-SNE map")
        parser.add_argument("--no-duplicates", action="store_true", help="skip the duplicate detector's evaluation")
        parser.add_argument("--catalog", type=Path, default=datasets.CATALOG_DIR)
        parser.add_argument("--consumer", type=Path, default=datasets.CONSUMER_DIR)

    def handle(self, *args, **opts):
        if not (opts["catalog"] / "labels.csv").exists():
            raise CommandError(f"No catalogue at {opts['catalog']} (expected labels.csv and duplicates.csv there).")
        for name in ("gallery_size", "copies", "synthetic", "consumer_per_label"):
            if opts[name] is not None and opts[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        out_dir = reports_dir(opts["out"])
        options = EvalOptions(
            models=(active_model_name(), *opts["model"]),
            quick=opts["quick"],
            seed=opts["seed"],
            gallery_size=opts["gallery_size"],
            copies=opts["copies"],
            synthetic=opts["synthetic"],
            consumer_per_label=opts["consumer_per_label"],
            with_baseline=not opts["no_baseline"],
            with_index=not opts["no_index"],
            with_map=not opts["no_map"],
            with_duplicates=not opts["no_duplicates"],
            catalog_dir=opts["catalog"],
            consumer_dir=opts["consumer"],
            out_dir=out_dir,
            json_path=opts["json"],
            cache_dir=cache_dir(opts["cache_dir"], "evaluate"),
            command=command_line("evaluate"),
            holdout_model=opts["holdout"],
        )
        result = evaluate_run(options, log=lambda line: self.stdout.write(line))
        self.stdout.write("")
        self.stdout.write(evaluate_text(result))
        suffix = ("_holdout" if options.holdout_model else "") + ("_quick" if options.quick else "")
        json_path = options.json_path or out_dir / f"evaluate{suffix}.json"
        self.stdout.write(f"JSON: {json_path}; Markdown: {json_path.with_suffix('.md')}; map: {out_dir / f'tsne{suffix}.png'}")
