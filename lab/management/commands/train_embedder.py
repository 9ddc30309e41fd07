"""``manage.py train_embedder``: learn a consumer-to-shop metric on the frozen backbone.

    python manage.py train_embedder            # efficientnet_lite0-triplet-v4: 7,646 products x 4 views, 20-45 min on 2 cores
    python manage.py train_embedder --name efficientnet_lite0-small-v1 --limit 1000 --views 2 --epochs 20   # ~5 min
    python manage.py train_embedder --name NAME --resume              # continue an interrupted run

The model is published to ``VISUALSEARCH_MODELS_DIR/<name>/`` (default var/models): weights,
metadata.json (backbone, dim, seed, epochs, data hash, hold-out split, history) and
loss_curve.png. ``load_embedder(name)``, ``embed_catalog --model NAME`` and
``evaluate --model NAME --holdout NAME`` then use it. See lab/training/trainer.py.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lab import datasets
from lab.cli import cache_dir
from lab.split import HoldoutSplit
from lab.training.categories import category_head_train
from lab.training.trainer import DEFAULT_NAME, TrainConfig, TrainingError, train
from visualsearch.embedding import EmbedderConfigError
from visualsearch.embedding.config import MODEL_NAMES


class Command(BaseCommand):
    help = "Train a projection head (triplet loss, hard negatives) for consumer-to-shop retrieval; publish it as a named model."

    def add_arguments(self, parser):
        d = TrainConfig()
        parser.add_argument("--name", default=DEFAULT_NAME, help=f"model name, a folder in the models dir (default {DEFAULT_NAME})")
        parser.add_argument("--backbone", default=d.backbone, choices=MODEL_NAMES)
        parser.add_argument("--dim", type=int, default=d.dim, help="output dimension (default 256)")
        parser.add_argument("--hidden", type=int, default=d.hidden, help="hidden layer width; 0 for a linear head")
        parser.add_argument("--limit", type=int, default=d.limit, help="training products (default: all outside the hold-out, 7,646 of the shared catalogue); 0 = all")
        parser.add_argument("--views", type=int, default=d.views, help="synthetic consumer-like views per product")
        parser.add_argument("--epochs", type=int, default=d.epochs)
        parser.add_argument("--margin", type=float, default=d.margin)
        parser.add_argument("--mining", choices=("batch-hard", "semi-hard"), default=d.mining)
        parser.add_argument("--prefer-same-type", action="store_true",
                            help="mine negatives among the anchor's articleType first (default: among the whole batch, "
                                 "which is built of a few articleTypes, so most mined negatives share the type anyway)")
        parser.add_argument("--batch-types", type=int, default=d.batch_types, help="articleTypes per batch")
        parser.add_argument("--per-type", type=int, default=d.per_type, help="products per articleType in a batch")
        parser.add_argument("--consumer-weight", type=float, default=d.consumer_weight,
                            help="weight of the category term on consumer photos outside the hold-out (0: off)")
        parser.add_argument("--lr", type=float, default=d.lr)
        parser.add_argument("--train-last-stage", action="store_true", help="also train the backbone's last stage (EfficientNet-Lite0 conv head)")
        parser.add_argument("--train-blocks", type=int, default=d.tail_blocks,
                            help="with --train-last-stage: also train the backbone's last N MBConv blocks (the cache then "
                                 "holds the maps before them)")
        parser.add_argument("--precision", choices=("float32", "bfloat16"), default=d.precision,
                            help="bfloat16: train the tail and head under autocast (faster on CPUs with bf16 units)")
        parser.add_argument("--val-fraction", type=float, default=d.val_fraction, help="training products kept for the per-epoch validation")
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--holdout-fraction", type=float, default=d.split.product_fraction, help="share of products held out")
        parser.add_argument("--consumer-holdout-fraction", type=float, default=d.split.consumer_fraction,
                            help="share of consumer-photo contributors held out")
        parser.add_argument("--catalog", type=Path, default=datasets.CATALOG_DIR)
        parser.add_argument("--consumer", type=Path, default=datasets.CONSUMER_DIR)
        parser.add_argument("--models-dir", type=Path, help="default: settings.VISUALSEARCH_MODELS_DIR")
        parser.add_argument("--cache-dir", type=Path, help="backbone feature cache (default var/cache/train)")
        parser.add_argument("--device", help="cpu / cuda / cuda:N (default: VISUALSEARCH_DEVICE, auto = CUDA when present)")
        parser.add_argument("--threads", type=int, help="torch threads (default: VISUALSEARCH_TORCH_THREADS or torch's)")
        parser.add_argument("--resume", action="store_true", help="continue the unfinished run of this name")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing model or unfinished run of this name")
        parser.add_argument("--no-category-head", action="store_true",
                            help="skip the category classifier trained on the new model's embedding afterwards")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        if opts["threads"]:
            import torch

            torch.set_num_threads(opts["threads"])
        try:
            split = HoldoutSplit(product_fraction=opts["holdout_fraction"], consumer_fraction=opts["consumer_holdout_fraction"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        config = TrainConfig(
            name=opts["name"],
            backbone=opts["backbone"],
            dim=opts["dim"],
            hidden=opts["hidden"],
            limit=opts["limit"] or None,
            views=opts["views"],
            epochs=opts["epochs"],
            margin=opts["margin"],
            mining=opts["mining"],
            same_type=opts["prefer_same_type"],
            batch_types=opts["batch_types"],
            per_type=opts["per_type"],
            consumer_weight=opts["consumer_weight"],
            lr=opts["lr"],
            train_last_stage=opts["train_last_stage"],
            tail_blocks=opts["train_blocks"],
            precision=opts["precision"],
            val_fraction=opts["val_fraction"],
            seed=opts["seed"],
            split=split,
            catalog_dir=opts["catalog"],
            consumer_dir=opts["consumer"],
            models_dir=opts["models_dir"] or Path(settings.VISUALSEARCH_MODELS_DIR),
            cache_dir=cache_dir(opts["cache_dir"], "train"),
            device=opts["device"],
            resume=opts["resume"],
            overwrite=opts["overwrite"],
        )
        if config.name in MODEL_NAMES:
            raise CommandError(f"{config.name!r} is a backbone's name; pick another name for the fine-tuned model.")
        try:
            metadata = train(config, log=self.stdout.write, progress=False if opts["no_progress"] else None)
            if not opts["no_category_head"]:
                category_head_train(config.name, config, log=self.stdout.write)
        except (TrainingError, EmbedderConfigError) as exc:
            raise CommandError(str(exc)) from exc
        final = metadata["final"]
        self.stdout.write(self.style.SUCCESS(
            f"Model {config.name}: {metadata['dim']}-d, {metadata['epochs']} epochs, final loss {final.get('loss', float('nan')):.4f}, "
            f"validation views R@1 {final.get('val_views_r1', float('nan')):.3f}; "
            f"{metadata['timings']['total_seconds']:.0f}s. Evaluate on the hold-out with: "
            f"python manage.py evaluate --model {config.name} --holdout {config.name}"
        ))
