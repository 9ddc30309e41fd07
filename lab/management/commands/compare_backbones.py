"""``manage.py compare_backbones``: EfficientNet-Lite0, Lite1 and Lite2 fine-tuned with one
recipe and scored on one hold-out, with their CPU cost, to pick the shipped backbone by the
numbers.

    python manage.py compare_backbones                       # the three, the default small recipe
    python manage.py compare_backbones --backbone efficientnet_lite1 --epochs 12 --limit 2500

The recipe is the shipped model's (head + last stage, triplet + category + instance terms,
thumbnails), at a size the shared 2-core machine can run three times: ``--limit`` training
products, ``--views`` views each, ``--epochs``. Each model is published as
``<backbone>-compare-<limit>x<views>x<epochs>`` in the models dir. The hold-out is the one
every model here shares (same salt and fractions). Reports: reports/backbones.{json,md}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.core.management.base import BaseCommand

from lab.cli import cache_dir, command_line, reports_dir
from lab.evaluation.matching import MatchingOptions, matching_run
from lab.reports import md_table, text_table
from lab.training.categories import category_head_train
from lab.training.trainer import TrainConfig, train
from visualsearch.embedding import available_models, load_embedder

BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def cpu_cost(name: str, batch: int = 8, rounds: int = 5) -> dict:
    """Forward images/s at batch 1 and ``batch`` on random input, one thread, median of ``rounds``."""
    embedder = load_embedder(name)
    size = embedder.input_size
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n in (1, batch):
            x = torch.randn(n, 3, size, size)
            embedder.embed_tensors(x)
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                embedder.embed_tensors(x)
                times.append(time.perf_counter() - t0)
            out[f"batch{n}_images_per_s"] = round(n / float(np.median(times)), 1)
    finally:
        torch.set_num_threads(threads)
    out["input_size"] = size
    out["parameters_m"] = round(sum(p.numel() for p in embedder._model.parameters()) / 1e6, 2)
    return out


class Command(BaseCommand):
    help = "Fine-tune EfficientNet-Lite0/1/2 with one recipe, score them on one hold-out, measure their CPU cost."

    def add_arguments(self, parser):
        parser.add_argument("--backbone", action="append", choices=BACKBONES, help="default: all three")
        parser.add_argument("--limit", type=int, default=1500, help="training products")
        parser.add_argument("--views", type=int, default=2)
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--out", type=Path)

    def handle(self, *args, **opts):
        backbones = tuple(opts["backbone"] or BACKBONES)
        out_dir = reports_dir(opts["out"])
        rows, result = [], {"command": command_line("compare_backbones"), "recipe": {}, "models": {}}
        for backbone in backbones:
            name = f"{backbone}-compare-{opts['limit']}x{opts['views']}x{opts['epochs']}"
            config = TrainConfig(
                name=name, backbone=backbone, limit=opts["limit"], views=opts["views"], epochs=opts["epochs"],
                train_last_stage=True, cache_dir=cache_dir(None, "train"),
                models_dir=Path(settings.VISUALSEARCH_MODELS_DIR),
            )
            result["recipe"] = config.recipe()
            started = time.perf_counter()
            if name not in available_models():
                train(config, log=self.stdout.write, progress=False)
                category_head_train(name, config, log=self.stdout.write)
            train_seconds = time.perf_counter() - started
            matching = matching_run(MatchingOptions(
                models=(name,), holdout_model=name, out_dir=out_dir / f"backbone_{backbone}", cache_dir=cache_dir(None, "evaluate"),
                views=300, consumer_per_label=40, select_products=600, select_views=200, select_consumer_per_label=25,
            ), log=self.stdout.write)["models"][name]
            cost = cpu_cost(name)
            result["models"][backbone] = {"model": name, "train_seconds": round(train_seconds), "matching": matching, "cpu": cost}
            rows.append([
                backbone, str(cost["input_size"]), f"{cost['parameters_m']}", f"{cost['batch1_images_per_s']}", f"{cost['batch8_images_per_s']}",
                f"{matching['views_r1']:.3f}", f"{matching['copies_r1']:.3f}", f"{matching['consumer_p10']:.3f}",
                f"{matching['system']['top8_share']:.3f}", f"{matching['system']['category_top1']:.3f}", f"{matching['consumer_instance_r1']:.3f}",
            ])
        header = ["backbone", "input", "params (M)", "img/s b1", "img/s b8", "views R@1", "copies R@1", "consumer P@10",
                  "top-8 same type", "category top-1", "photos told apart R@1"]
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "backbones.json").write_text(json.dumps(result, indent=2, default=str))
        (out_dir / "backbones.md").write_text(f"Command: `{result['command']}`\n\n" + md_table(header, rows) + "\n")
        self.stdout.write(text_table(header, rows))
