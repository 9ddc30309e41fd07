"""Training a model's category classifier: a softmax over one hidden ReLU layer on its
embedding (``HIDDEN``; 0 trains the linear head of the first models; no Django).

Same split as the model's training (``TrainConfig``: the hold-out is never seen), same cached
backbone maps. Examples:

* every training product's shop photo, its consumer-like views, its thumbnail and its real
  second images, labelled with the product's articleType;
* the training side of the consumer photos and their edits, labelled with the *set* of
  articleTypes their label maps to (``label_mapping_v1.json``): the loss is
  ``-log sum(p(type) for type in the accepted set)``.

The validation products and contributors (the same 10 % the embedding's training kept back)
choose the softmax temperature (calibration) and the probability above which visual search
narrows a search to the guessed category; the hold-out is scored by ``manage.py
evaluate_matching``. The result is written beside the model as ``categories.npz``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lab.training import features as feats
from lab.training.trainer import TrainConfig, TrainData, training_data, view_maps
from visualsearch.embedding import clear_cache, load_embedder
from visualsearch.embedding.categories import CategoryHead, save_category_head
from visualsearch.embedding.config import model_folder
from visualsearch.embedding.finetuned import FineTunedExtractor

# Consumer photos are the domain the classifier serves; they are outnumbered 20:1 by
# catalogue views, so each counts this much more in the loss.
CONSUMER_WEIGHT = 4.0
EPOCHS = 60
BATCH = 512
LR = 3e-3
WEIGHT_DECAY = 1e-4
# One hidden ReLU layer (``train_category_head --hidden``; 0: linear), with dropout on its input
# and output. On v10's validation consumer photos (243, served vectors) top-1 0.807 linear ->
# 0.864 (1,024 wide, dropout 0.5); held out 0.800 -> 0.814. Served with narrowing that keeps a
# close nearest product reachable (photos.photo_search): every hold-out measure at or above the
# linear head's (docs/benchmarks.md, "A category classifier with a hidden layer").
HIDDEN = 1024
DROPOUT = 0.5
TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.96, 0.05))
# A narrowed search shows only the guessed category: the guess should be right this often.
AUTO_PRECISION = 0.9


@dataclass
class CategoryData:
    vectors: np.ndarray  # (n, dim) the model's unit vectors
    accepted: np.ndarray  # (n, classes) bool: which labels count as right
    consumer: np.ndarray  # (n,) bool: a consumer photo (or an edit of one)
    val: np.ndarray  # (n,) bool: a validation example
    original: np.ndarray  # (n,) bool: a shop photo or an unedited consumer photo (what validation scores)


def model_vectors(model_name: str, encoder: feats.TrunkEncoder, maps: np.ndarray, batch: int = 512) -> np.ndarray:
    """The model's vectors from cached trunk maps: its last stage and head for a fine-tuned
    model, the backbone's own last stage for an ImageNet one."""
    model = load_embedder(model_name)._model
    if not isinstance(model, FineTunedExtractor):
        return encoder.pool(maps)
    out = []
    with torch.inference_mode():
        for start in range(0, len(maps), batch):
            x = torch.as_tensor(np.asarray(maps[start : start + batch], dtype=np.float32)).reshape(-1, *encoder.shape)
            out.append(F.normalize(model.head(model.tail(x)).float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, load_embedder(model_name).dim), np.float32)


def category_data(model_name: str, config: TrainConfig, log: Callable[[str], None] = print) -> tuple[CategoryData, list[str]]:
    td: TrainData = training_data(config)
    encoder = feats.TrunkEncoder(config.backbone, tail_blocks=config.tail_blocks)
    store = feats.store_open(config.cache_dir, encoder)
    try:
        views = td.all_views()
        computed = feats.features_ensure(store, encoder, views)
        log(f"category data: {len(views):,} views ({computed:,} computed now)")
        blocks = view_maps(store, td)
    finally:
        store.close()
    labels = list(td.type_names)
    classes = len(labels)
    one_hot = np.eye(classes, dtype=bool)
    product_accepted = one_hot[td.product_types]
    label_accepted = {
        label: np.isin(np.array(labels), sorted(types)) for label, types in td.accepted.items()
    }
    consumer_accepted = np.stack([label_accepted[label] for label in td.consumer_labels]) if td.consumer_labels else np.zeros((0, classes), bool)
    parts = [
        (blocks["clean"], product_accepted, False, td.val_products, True),
        (blocks["query"], product_accepted[td.query_owner], False, td.val_products[td.query_owner], False),
        (blocks["consumer"], consumer_accepted, True, td.consumer_val, True),
        (blocks["instance"], consumer_accepted[td.instance_owner], True, td.consumer_val[td.instance_owner], False),
    ]
    parts = [p for p in parts if len(p[0])]
    vectors = np.concatenate([model_vectors(model_name, encoder, p[0]) for p in parts])
    data = CategoryData(
        vectors=vectors.astype(np.float32),
        accepted=np.concatenate([p[1] for p in parts]),
        consumer=np.concatenate([np.full(len(p[0]), p[2]) for p in parts]),
        val=np.concatenate([np.asarray(p[3], dtype=bool) for p in parts]),
        original=np.concatenate([np.full(len(p[0]), p[4]) for p in parts]),
    )
    return data, labels


def _fit(data: CategoryData, classes: int, seed: int, hidden: int = HIDDEN, dropout: float = DROPOUT) -> CategoryHead:
    """The trained layers as an uncalibrated head (temperature 1)."""
    torch.manual_seed(seed)
    rows = np.flatnonzero(~data.val & data.accepted.any(axis=1))
    x = torch.as_tensor(data.vectors[rows])
    accepted = torch.as_tensor(data.accepted[rows])
    weight = torch.as_tensor(np.where(data.consumer[rows], CONSUMER_WEIGHT, 1.0).astype(np.float32))
    layers = [torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout)] if hidden else []
    net = torch.nn.Sequential(torch.nn.Dropout(dropout if hidden else 0.0), *layers, torch.nn.Linear(hidden or x.shape[1], classes))
    optimiser = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(EPOCHS):
        order = rng.permutation(len(rows))
        for start in range(0, len(order), BATCH):
            i = torch.as_tensor(order[start : start + BATCH])
            log_p = F.log_softmax(net(x[i]) * 10.0, dim=1)  # unit vectors: logits need a scale
            loss = -(torch.logsumexp(log_p.masked_fill(~accepted[i], float("-inf")), dim=1) * weight[i]).sum() / weight[i].sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

    def array(tensor: torch.Tensor, scale: float = 1.0) -> np.ndarray:
        return (tensor.detach().numpy() * scale).astype(np.float32)

    out = net[-1]  # the scale of the logits folds into the last layer
    first = net[1] if hidden else None
    return CategoryHead(
        labels=tuple(str(n) for n in range(classes)), weight=array(out.weight, 10.0), bias=array(out.bias, 10.0),
        hidden_weight=array(first.weight) if first is not None else None, hidden_bias=array(first.bias) if first is not None else None,
    )


def _hits(head: CategoryHead, vectors: np.ndarray, accepted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = head.probabilities(vectors)
    top = probs.argmax(axis=1)
    return accepted[np.arange(len(top)), top], probs.max(axis=1)


def category_head_train(
    model_name: str, config: TrainConfig, log: Callable[[str], None] = print, out_dir: Path | None = None,
    hidden: int = HIDDEN, dropout: float = DROPOUT,
) -> CategoryHead:
    """Train, calibrate and save the category classifier of ``model_name`` (see the module docstring)."""
    started = time.perf_counter()
    data, labels = category_data(model_name, config, log)
    layers = replace(_fit(data, len(labels), config.seed, hidden=hidden, dropout=dropout), labels=tuple(labels))
    val = data.val & data.original & data.accepted.any(axis=1)
    val_consumer = val & data.consumer

    def nll(temperature: float) -> float:
        head = replace(layers, temperature=temperature)
        p = head.probabilities(data.vectors[val])
        return float(-np.log(np.maximum((p * data.accepted[val]).sum(axis=1), 1e-9)).mean())

    temperature = min(TEMPERATURES, key=nll)
    head = replace(layers, temperature=temperature)
    hits, confidence = _hits(head, data.vectors[val_consumer], data.accepted[val_consumer])
    # The threshold above which a search is narrowed: the lowest at which the guesses it lets
    # through are right at least AUTO_PRECISION of the time on validation consumer photos.
    threshold = next((t for t in THRESHOLDS if (confidence >= t).any() and hits[confidence >= t].mean() >= AUTO_PRECISION), THRESHOLDS[-1])
    covered = float((confidence >= threshold).mean()) if len(confidence) else 0.0
    product_hits, _ = _hits(head, data.vectors[val & ~data.consumer], data.accepted[val & ~data.consumer])
    info = {
        "trained_on": {"examples": int((~data.val).sum()), "classes": len(labels), "consumer_weight": CONSUMER_WEIGHT,
                       **({"hidden": hidden, "dropout": dropout} if hidden else {})},
        "validation": {
            "consumer_photos": int(val_consumer.sum()),
            "consumer_top1": float(hits.mean()) if len(hits) else None,
            "products_top1": float(product_hits.mean()) if len(product_hits) else None,
            "auto_share": covered,
            "auto_precision": float(hits[confidence >= threshold].mean()) if (confidence >= threshold).any() else None,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    head = replace(layers, temperature=temperature, auto_threshold=float(threshold), info=info)
    folder = out_dir or _model_folder(model_name)
    path = save_category_head(folder, head)
    # The embedder cached while the head was trained has none: the next load_embedder() in
    # this process (compare_backbones scores the model at once) must read the new file.
    clear_cache()
    metadata_path = Path(folder) / "metadata.json"
    if metadata_path.is_file():
        metadata = json.loads(metadata_path.read_text())
        metadata["category_head"] = {"classes": len(labels), "temperature": temperature, "auto_threshold": float(threshold), **info}
        metadata_path.write_text(json.dumps(metadata, indent=2, default=str))
    top1 = info["validation"]["consumer_top1"]
    log(
        f"category head of {model_name}: {len(labels)} classes, temperature {temperature}, auto threshold {threshold} "
        f"(validation consumer photos: {len(hits)}, top-1 {'n/a' if top1 is None else f'{top1:.3f}'}, narrowed {covered:.0%} "
        f"of searches at precision {info['validation']['auto_precision']}); written to {path}"
    )
    return head


def _model_folder(model_name: str) -> Path:
    folder = model_folder(model_name)
    if folder is None:
        raise ValueError(f"{model_name} is not a fine-tuned model with a folder; pass out_dir.")
    return folder
