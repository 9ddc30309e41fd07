"""Training the flat-lay segmenter (``visualsearch.segmenter``) on synthetic composites.

Catalogue photos are garments on studio white, so their masks are free: a garment is cut
out (``looks.studio_cutout``) and pasted onto a real surface (a tiled corner of a consumer
photo, ``looks.surface_background``), exactly as ``evaluate_looks`` builds its composites, and
the target is the pasted pixels. Two kinds of composite:

* **several items** (the share 1 - ``large_share``): 1-4 pieces in the cells of a 2x2 grid,
  each 60-90 % of its cell; a piece is a consumer photo pasted whole (a rectangle, all of it
  foreground) with probability ``consumer_share``;
* **one large garment** (``large_share``): a garment filling 70-100 % of the canvas, as most
  consumer photos show one - without them the network learns only quarter-size garments and
  punches holes in a garment that fills the photo.

What it never sees: the hold-out products and contributors of ``holdout_model`` (where
``evaluate_looks`` scores), the training-side products that ``evaluate_looks --validation
--seed <validation_seed>`` uses as its gallery, and the consumer photos that model's
training held back for validation (its single-garment validation photos). Everything is
seeded; ``make train-segmenter`` reproduces the shipped weights.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lab import datasets
from lab.evaluation.looks import CANVAS, COMPOSITE_SUBS, cell_place, scaled, studio_cutout, surface_background, validation_gallery_draw
from lab.evaluation.matching import validation_consumer_of
from lab.evaluation.quality import holdout_split
from visualsearch.garments import SEGMENTER_THRESHOLD, item_pixels
from visualsearch.segmenter import network, to_input


@dataclass
class SegmenterRecipe:
    name: str = "flatlay-unet-v1"
    holdout_model: str = "efficientnet_lite0-vitrine-v7"
    composites: int = 4000
    kept_aside: int = 200  # composites scored (pixel IoU) and never trained on
    large_share: float = 0.25
    consumer_share: float = 0.15
    epochs: int = 10
    batch: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    validation_seed: int = 7  # evaluate_looks --validation --seed 7's gallery is left out
    threads: int = 2


def training_pools(recipe: SegmenterRecipe, catalog_dir: Path = datasets.CATALOG_DIR,
                   consumer_dir: Path = datasets.CONSUMER_DIR) -> tuple[list[datasets.CatalogItem], list[datasets.ConsumerPhoto]]:
    """The products and consumer photos composites may use (see the module docstring)."""
    split = holdout_split(recipe.holdout_model)
    catalogue = datasets.catalog_read(catalog_dir)
    held = split.product_holdout([i.id for i in catalogue], catalog_dir)
    train_side = [i for i in catalogue if i.id not in held]
    validation_gallery = {i.id for i in validation_gallery_draw(train_side, seed=recipe.validation_seed)}
    products = [i for i in train_side if i.id not in validation_gallery and i.sub_category in COMPOSITE_SUBS]
    held_back = validation_consumer_of(recipe.holdout_model)
    photos = [p for p in datasets.consumer_read(consumer_dir)
              if not split.consumer_is_holdout(p.sender_id, p.id) and not (held_back and held_back(p))]
    return products, photos


def _paste(canvas: Image.Image, mask: np.ndarray, piece: Image.Image, x: int, y: int) -> None:
    canvas.paste(piece, (x, y), piece)
    alpha = np.asarray(piece.getchannel("A")) > 0
    mask[y : y + piece.height, x : x + piece.width] |= alpha


def training_composite(rng: random.Random, by_sub: dict[str, list[datasets.CatalogItem]], photos: list[datasets.ConsumerPhoto],
                       recipe: SegmenterRecipe) -> tuple[Image.Image, np.ndarray]:
    """One composite on a CANVAS-sized surface and its garment mask (bool, height x width)."""
    canvas = surface_background(rng.choice(photos).path, rng)
    mask = np.zeros((CANVAS[1], CANVAS[0]), dtype=bool)
    subs = sorted(by_sub)
    if rng.random() < recipe.large_share:
        piece = studio_cutout(rng.choice(by_sub[rng.choice(subs)]).path)
        piece = scaled(piece, rng.uniform(0.7, 1.0) * min(CANVAS[0] / piece.width, CANVAS[1] / piece.height))
        _paste(canvas, mask, piece, rng.randint(0, CANVAS[0] - piece.width), rng.randint(0, CANVAS[1] - piece.height))
        return canvas, mask
    n = rng.randint(1, 4)
    for cell in rng.sample([(0, 0), (1, 0), (0, 1), (1, 1)], n):
        if rng.random() < recipe.consumer_share:
            piece = Image.open(rng.choice(photos).path).convert("RGBA")
        else:
            piece = studio_cutout(rng.choice(by_sub[rng.choice(subs)]).path)
        _paste(canvas, mask, *cell_place(piece, cell, rng))
    return canvas, mask


def composites_render(recipe: SegmenterRecipe, products: list[datasets.CatalogItem], photos: list[datasets.ConsumerPhoto],
                      log: Callable[[str], None] = print) -> tuple[np.ndarray, np.ndarray]:
    """The composites as the locator reads them (``garments.item_pixels``: uint8, n x h x w x 3)
    and their targets (the share of each thumbnail pixel that is garment, float32 n x h x w)."""
    rng = random.Random(recipe.seed)
    by_sub: dict[str, list[datasets.CatalogItem]] = defaultdict(list)
    for item in products:
        by_sub[item.sub_category].append(item)
    images, targets = [], []
    started = time.perf_counter()
    for n in range(recipe.composites):
        canvas, mask = training_composite(rng, by_sub, photos, recipe)
        pixels = item_pixels(canvas)
        target = Image.fromarray(mask.astype(np.uint8) * 255).resize((pixels.shape[1], pixels.shape[0]), Image.Resampling.BOX)
        images.append(pixels)
        targets.append(np.asarray(target, dtype=np.float32) / 255.0)
        if (n + 1) % 1000 == 0:
            log(f"  {n + 1:,} composites ({time.perf_counter() - started:.0f} s)")
    return np.stack(images), np.stack(targets)


def _loss(logits, target):
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(1, 2)) + target.sum(dim=(1, 2)) + 1)
    return bce + dice.mean()


def _augment(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    flip = bool(rng.random() < 0.5)
    if flip:
        x = x[:, ::-1]
    gain, shift = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)
    return np.clip(x.astype(np.float32) * gain + shift, 0, 255).astype(np.uint8), flip


def pixel_iou(module, images: np.ndarray, targets: np.ndarray) -> float:
    """Intersection over union of the predicted (the locator's threshold) and the true garment
    pixels (> 0.5 of the thumbnail pixel), over a set."""
    import torch

    inter = union = 0.0
    module.eval()
    with torch.inference_mode():
        for start in range(0, len(images), 32):
            logits = module(to_input(images[start : start + 32]))
            truth = targets[start : start + 32] > 0.5
            pred = (torch.sigmoid(logits) > SEGMENTER_THRESHOLD).numpy()[:, : truth.shape[1], : truth.shape[2]]
            inter += float((pred & truth).sum())
            union += float((pred | truth).sum())
    return inter / union if union else 1.0


def segmenter_train(recipe: SegmenterRecipe, out_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Render the composites, train, score the kept-aside ones, write weights.pt (float16) and
    metadata.json to ``out_dir``; returns the metadata."""
    import torch

    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    started = time.perf_counter()
    products, photos = training_pools(recipe)
    log(f"{len(products):,} training-side products, {len(photos):,} consumer photos as surfaces")
    images, targets = composites_render(recipe, products, photos, log)
    rendered = time.perf_counter() - started
    train_x, train_y = images[recipe.kept_aside :], targets[recipe.kept_aside :]
    aside_x, aside_y = images[: recipe.kept_aside], targets[: recipe.kept_aside]
    module = network()
    optimiser = torch.optim.AdamW(module.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * (len(train_x) // recipe.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.learning_rate, total_steps=steps)
    rng = np.random.default_rng(recipe.seed)
    history = []
    for epoch in range(recipe.epochs):
        module.train()
        order = rng.permutation(len(train_x))
        total, t0 = 0.0, time.perf_counter()
        for start in range(0, len(order) - recipe.batch + 1, recipe.batch):
            rows = order[start : start + recipe.batch]
            xs, ys = [], []
            for r in rows:
                x, flip = _augment(train_x[r], rng)
                xs.append(x)
                ys.append(train_y[r][:, ::-1] if flip else train_y[r])
            x = to_input(np.stack(xs))
            y = torch.from_numpy(np.ascontiguousarray(np.stack(ys)))
            logits = module(x)[:, : y.shape[1], : y.shape[2]]
            loss = _loss(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(rows)
        iou = pixel_iou(module, aside_x, aside_y)
        history.append({"epoch": epoch + 1, "loss": round(total / len(order), 4), "kept_aside_pixel_iou": round(iou, 4),
                        "seconds": round(time.perf_counter() - t0, 1)})
        log(f"  epoch {epoch + 1}: {history[-1]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in module.state_dict().items()}
    torch.save(state, out_dir / "weights.pt")
    metadata = {
        "name": recipe.name, "recipe": asdict(recipe), "parameters": sum(p.numel() for p in module.parameters()),
        "products": len(products), "surfaces": len(photos), "input": "garments.item_pixels (ITEM_SIDE long side, box blur 1)",
        "history": history, "kept_aside_pixel_iou": history[-1]["kept_aside_pixel_iou"] if history else None,
        "seconds_rendering": round(rendered, 1), "seconds_total": round(time.perf_counter() - started, 1),
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
    return metadata
