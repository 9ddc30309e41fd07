"""``manage.py train_category_head --model NAME``: (re)train a fine-tuned model's category
classifier (``categories.npz`` beside its weights) on the split the model was trained with.
``train_embedder`` runs this step itself; see lab/training/categories.py."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from lab.cli import cache_dir
from lab.evaluation.quality import holdout_split
from lab.training.categories import DROPOUT, HIDDEN, category_head_train
from lab.training.trainer import TrainConfig
from visualsearch.embedding import EmbedderConfigError, model_metadata


class Command(BaseCommand):
    help = "Train the category classifier of a fine-tuned model on its own training split."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="a fine-tuned model (its metadata.json gives backbone, split, views)")
        parser.add_argument("--hidden", type=int, default=HIDDEN, help=f"a hidden ReLU layer this wide (default {HIDDEN}; 0: a linear head)")
        parser.add_argument("--dropout", type=float, default=DROPOUT, help="dropout around the hidden layer")

    def handle(self, *args, model, hidden, dropout, **opts):
        metadata = model_metadata(model)
        if not metadata:
            raise CommandError(f"{model} is not a fine-tuned model with a metadata.json.")
        # Every setting of the recipe: the classifier reads the maps the model's own tail
        # expects (tail_blocks), from the views its training made.
        config = TrainConfig.from_recipe(model, metadata.get("recipe", {}), split=holdout_split(model), cache_dir=cache_dir(None, "train"))
        try:
            category_head_train(model, config, log=self.stdout.write, hidden=hidden, dropout=dropout)
        except (ValueError, EmbedderConfigError) as exc:
            raise CommandError(str(exc)) from exc
