"""``manage.py train_category_head --model NAME``: (re)train a fine-tuned model's category
classifier (``categories.npz`` beside its weights) on the split the model was trained with.
``train_embedder`` runs this step itself; see lab/training/categories.py."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from lab.cli import cache_dir
from lab.evaluation.quality import holdout_split
from lab.training.categories import category_head_train
from lab.training.trainer import TrainConfig
from visualsearch.embedding import EmbedderConfigError, model_metadata


class Command(BaseCommand):
    help = "Train the category classifier of a fine-tuned model on its own training split."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="a fine-tuned model (its metadata.json gives backbone, split, views)")

    def handle(self, *args, model, **opts):
        metadata = model_metadata(model)
        if not metadata:
            raise CommandError(f"{model} is not a fine-tuned model with a metadata.json.")
        recipe = metadata.get("recipe", {})
        config = TrainConfig(
            name=model, backbone=metadata["backbone"], views=recipe.get("views", 4), seed=recipe.get("seed", 0),
            val_fraction=recipe.get("val_fraction", 0.1), thumbnails=recipe.get("thumbnails", False),
            instance_weight=recipe.get("instance_weight", 0.0), instance_views=recipe.get("instance_views", 2),
            split=holdout_split(model), cache_dir=cache_dir(None, "train"),
        )
        try:
            category_head_train(model, config, log=self.stdout.write)
        except (ValueError, EmbedderConfigError) as exc:
            raise CommandError(str(exc)) from exc
