"""``manage.py train_segmenter``: train the flat-lay segmenter of shop the look on synthetic composites.

    python manage.py train_segmenter --out var/garment_models/flatlay-unet-v1-repro   # the shipped recipe

Then measure it (``VISUALSEARCH_FLATLAY_SEGMENTER=<out dir> python manage.py evaluate_looks
--holdout efficientnet_lite0-vitrine-v7``) and, to ship it, copy weights.pt and metadata.json
to visualsearch/garment_models/<name>/ with a MODEL_CARD.md. See lab/training/segmenter.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab import datasets
from lab.training.segmenter import SegmenterRecipe, segmenter_train
from visualsearch.embedding import available_models


class Command(BaseCommand):
    help = "Train the flat-lay garment segmenter (visualsearch.segmenter) on composites of training-side products."

    def add_arguments(self, parser):
        defaults = SegmenterRecipe()
        parser.add_argument("--out", type=Path, required=True, help="directory for weights.pt and metadata.json")
        parser.add_argument("--name", default=None, help="the model's name (default: the --out directory's name)")
        parser.add_argument("--holdout", default=defaults.holdout_model, help="the embedding model whose hold-out is left out")
        parser.add_argument("--composites", type=int, default=defaults.composites)
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--large-share", type=float, default=defaults.large_share)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--threads", type=int, default=defaults.threads)

    def handle(self, *args, **opts):
        if not (datasets.CATALOG_DIR / "labels.csv").exists():
            raise CommandError(f"No catalogue at {datasets.CATALOG_DIR} (../shared/data beside the repository).")
        if opts["holdout"] not in available_models():
            raise CommandError(f"Unknown model {opts['holdout']!r}; available: {', '.join(available_models())}.")
        if not 0.0 <= opts["large_share"] <= 1.0:
            raise CommandError("--large-share is a share between 0 and 1.")
        if opts["composites"] < 300 or opts["epochs"] < 1:
            raise CommandError("Train on at least 300 composites (200 are kept aside to score it) for at least 1 epoch.")
        recipe = SegmenterRecipe(
            name=opts["name"] or opts["out"].name, holdout_model=opts["holdout"], composites=opts["composites"],
            epochs=opts["epochs"], large_share=opts["large_share"], seed=opts["seed"], threads=opts["threads"],
        )
        metadata = segmenter_train(recipe, opts["out"], log=self.stdout.write)
        self.stdout.write(f"kept-aside pixel IoU {metadata['kept_aside_pixel_iou']}; {metadata['seconds_total']:.0f} s; "
                          f"written to {opts['out']}")
