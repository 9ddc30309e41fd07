"""Training a projection head for consumer-to-shop retrieval (no Django).

Anchor = a consumer-like photo of a product (a seeded synthetic view, or a real second image
from ``duplicates.csv`` where the catalogue has one); positive = that product's shop photo;
negative = another product's shop photo mined in the batch (batch-hard or semi-hard).
Batches are built of ``batch_types`` articleTypes x ``per_type`` products, so the mined
negatives are mostly of the anchor's own articleType (the share is logged); ``same_type``
restricts mining to that type whenever the batch holds one. Optionally a category term on consumer photos
(``clothing_dataset_cc0``, contributors outside the hold-out): their label's accepted
articleTypes should fill the top 10 (``losses.category_loss``).

Backbone outputs are cached once per view (``features``); epochs then run only the head
(and, with ``train_last_stage``, EfficientNet-Lite0's last 1x1 conv + BN, and with
``tail_blocks`` k its last k MBConv blocks too: the cache then holds the maps before them). Everything is
seeded: batch order, consumer sampling and dropout depend on (seed, epoch) only, so a run
resumed from its per-epoch state ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lab import datasets
from lab.split import (
    HoldoutSplit,
    candidate_pairs,
    duplicate_groups,
    ids_digest,
    unit_hash,
    validation_contributor,
    validation_product,
)
from lab.training import features as feats
from lab.training.losses import category_loss, instance_loss, triplet_loss
from visualsearch.embedding import current_settings, finetuned
from visualsearch.embedding.embedder import resolve_device

STATE_FILE = "train_state.pt"
CURVE_FILE = "loss_curve.png"
DEFAULT_NAME = "efficientnet_lite0-triplet-v4"


class TrainingError(RuntimeError):
    """Bad options or data: the command turns it into a CommandError."""


@dataclass
class TrainConfig:
    name: str = DEFAULT_NAME
    backbone: str = "efficientnet_lite0"
    dim: int = 256
    hidden: int = 0  # 0: a linear head (generalised better than a 1,024-wide hidden layer, see docs)
    dropout: float = 0.1
    limit: int | None = None  # training products (None: all outside the hold-out; those with a real second image first)
    views: int = 4  # synthetic consumer-like views per product
    epochs: int = 40
    batch_types: int = 16
    per_type: int = 16
    margin: float = 0.2
    mining: str = "batch-hard"
    same_type: bool = False  # mine among the anchor's articleType first (batches are built by type either way)
    consumer_weight: float = 1.0
    consumer_batch: int = 64
    consumer_candidates: int = 512
    consumer_margin: float = 0.1
    thumbnails: bool = True  # one 60x80 thumbnail view per product among the queries
    instance_weight: float = 1.0  # InfoNCE between consumer photos and their edits (0: off)
    instance_views: int = 2  # edited copies per consumer photo
    instance_batch: int = 64
    instance_temperature: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    train_last_stage: bool = False
    tail_blocks: int = 0  # with train_last_stage: also train the backbone's last N MBConv blocks
    # "bfloat16": the tail and head run under CPU autocast (weights, optimiser and losses stay
    # float32): 1.8x faster steps with a trained block on these cores (docs/benchmarks.md).
    precision: str = "float32"
    val_fraction: float = 0.1
    seed: int = 0
    split: HoldoutSplit = field(default_factory=HoldoutSplit)
    catalog_dir: Path = datasets.CATALOG_DIR
    consumer_dir: Path = datasets.CONSUMER_DIR
    models_dir: Path = Path("var/models")
    cache_dir: Path = Path("var/cache/train")
    device: str | None = None  # None: the embedding setting ("auto": CUDA when present)
    resume: bool = False
    overwrite: bool = False

    def check(self) -> None:
        if self.dim < 1 or self.hidden < 0 or self.views < 0 or self.epochs < 0:
            raise TrainingError("dim must be >= 1; hidden, views and epochs >= 0.")
        if self.limit is not None and self.limit < 4:
            raise TrainingError("limit must be at least 4 products.")
        if self.batch_types < 1 or self.per_type < 2:
            raise TrainingError("batch_types must be >= 1 and per_type >= 2.")
        if not 0.0 <= self.val_fraction < 0.5:
            raise TrainingError("val_fraction must be in [0, 0.5).")
        if self.mining not in ("batch-hard", "semi-hard"):
            raise TrainingError(f"unknown mining {self.mining!r}")
        if self.tail_blocks < 0 or (self.tail_blocks and not self.train_last_stage):
            raise TrainingError("tail_blocks must be >= 0, and trains blocks only with train_last_stage.")
        if self.precision not in ("float32", "bfloat16"):
            raise TrainingError(f"precision must be float32 or bfloat16, not {self.precision!r}")

    @classmethod
    def from_recipe(cls, name: str, recipe: dict, **overrides) -> TrainConfig:
        """The config a model was trained with, from the ``recipe`` its metadata records
        (``recipe()``'s keys; absent ones at today's defaults), with ``overrides`` (the split,
        the cache folder: where it runs, not what it learns)."""
        known = {f for f in cls.__dataclass_fields__ if f not in ("name", "split")}
        values = {key: value for key, value in recipe.items() if key in known}
        if isinstance(recipe.get("split"), dict):
            values["split"] = HoldoutSplit.from_dict(recipe["split"])
        return cls(name=name, **{**values, **overrides})

    def recipe(self) -> dict:
        """Everything that decides the weights (a resumed run must match it)."""
        keep = ("backbone", "dim", "hidden", "dropout", "limit", "views", "epochs", "batch_types", "per_type", "margin",
                "mining", "same_type", "consumer_weight", "consumer_batch", "consumer_candidates", "consumer_margin",
                "thumbnails", "instance_weight", "instance_views", "instance_batch", "instance_temperature", "lr", "weight_decay", "train_last_stage", "val_fraction", "seed")
        out = {k: getattr(self, k) for k in keep}
        # Absent at their defaults, so the recipes of earlier runs still match.
        if self.tail_blocks:
            out["tail_blocks"] = self.tail_blocks
        if self.precision != "float32":
            out["precision"] = self.precision
        out["split"] = self.split.to_dict()
        return out


@dataclass
class TrainData:
    product_ids: list[str]
    product_types: np.ndarray  # (P,) articleType index
    type_names: list[str]
    groups: np.ndarray  # (P,) duplicate-group index (copies of one photo never serve as negatives)
    clean_views: list[feats.View]  # (P,) the shop photo
    query_views: list[feats.View]  # synthetic views and real second images
    query_owner: np.ndarray  # (Q,) product row of each query view
    query_is_real: np.ndarray  # (Q,) bool: a real second image (duplicates.csv)
    query_kind: np.ndarray  # (Q,) "synthetic", "copy" or "thumbnail"
    val_products: np.ndarray  # (P,) bool: held back for the per-epoch validation
    consumer_views: list[feats.View]
    consumer_labels: list[str]
    consumer_val: np.ndarray  # (C,) bool: photos of contributors held back for the per-epoch validation
    accepted: dict[str, set[str]]  # consumer label -> accepted articleTypes
    instance_views: list[feats.View]  # edited copies of the consumer photos
    instance_owner: np.ndarray  # (I,) row of consumer_views each edit is a copy of
    holdout_ids: set[str]
    holdout_consumer: int
    notes: dict = field(default_factory=dict)

    def all_views(self) -> list[feats.View]:
        return [*self.clean_views, *self.query_views, *self.consumer_views, *self.instance_views]


def _seeded_order(ids: list[str], seed: int, stream: str) -> list[str]:
    return sorted(ids, key=lambda i: unit_hash(f"{seed}:{stream}", i))


def training_data(config: TrainConfig) -> TrainData:
    """Training products (never the hold-out), their views, and the consumer photos for the category term."""
    if not (Path(config.catalog_dir) / "labels.csv").exists():
        raise TrainingError(f"No catalogue at {config.catalog_dir} (expected labels.csv).")
    catalogue = datasets.catalog_read(config.catalog_dir)
    by_id = {item.id: item for item in catalogue}
    ids = [item.id for item in catalogue]
    holdout = config.split.product_holdout(ids, config.catalog_dir)
    copies: dict[str, list[datasets.CopyPair]] = {}
    if (Path(config.catalog_dir) / "duplicates.csv").exists():
        for pair in datasets.copies_read(config.catalog_dir):
            if pair.id in by_id and pair.id not in holdout:
                copies.setdefault(pair.id, []).append(pair)
    train_ids = [i for i in ids if i not in holdout]
    # Products with a real second image first, then a seeded sample of the others.
    with_copies = _seeded_order([i for i in train_ids if i in copies], config.seed, "copies")
    others = _seeded_order([i for i in train_ids if i not in copies], config.seed, "products")
    chosen = (with_copies + others)[: config.limit] if config.limit else with_copies + others
    order = {i: n for n, i in enumerate(ids)}
    chosen.sort(key=order.__getitem__)
    if len(chosen) < 4:
        raise TrainingError(f"Only {len(chosen)} training products: need at least 4.")

    type_names = sorted({by_id[i].article_type for i in chosen})
    type_index = {t: n for n, t in enumerate(type_names)}
    group_of = duplicate_groups(chosen, candidate_pairs(config.catalog_dir))
    group_names = {g: n for n, g in enumerate(sorted(set(group_of.values())))}
    clean, queries, owner, kinds = [], [], [], []
    for row, pid in enumerate(chosen):
        item = by_id[pid]
        clean.append(feats.file_view(item.path, pid, "clean"))
        views = [(feats.synthetic_view(item.path, pid, feats.train_view_seed(config.seed, k)), "synthetic") for k in range(config.views)]
        views += [(feats.file_view(pair.path, pid, "copy"), "copy") for pair in copies.get(pid, [])]
        if config.thumbnails:
            views.append((feats.thumbnail_view(item.path, pid), "thumbnail"))
        for view, kind in views:
            queries.append(view)
            owner.append(row)
            kinds.append(kind)
    val = np.array([validation_product(pid, seed=config.seed, fraction=config.val_fraction) for pid in chosen], dtype=bool)

    consumer_views, consumer_labels, consumer_val, held_consumer = [], [], [], 0
    mapping = datasets.label_mapping_load()
    if (Path(config.consumer_dir) / "labels.csv").exists():
        for photo in datasets.consumer_read(config.consumer_dir):
            if config.split.consumer_is_holdout(photo.sender_id, photo.id):
                held_consumer += 1
            elif config.consumer_weight > 0 and photo.label in mapping.article_types:
                consumer_views.append(feats.file_view(photo.path, photo.id, "consumer"))
                consumer_labels.append(photo.label)
                consumer_val.append(validation_contributor(photo, seed=config.seed, fraction=config.val_fraction))
    instance_views, instance_owner = [], []
    if config.instance_weight > 0:
        for row, view in enumerate(consumer_views):
            for k in range(config.instance_views):
                instance_views.append(feats.variant_view(view.path, view.item_id, feats.train_view_seed(config.seed, k)))
                instance_owner.append(row)
    return TrainData(
        product_ids=chosen,
        product_types=np.array([type_index[by_id[i].article_type] for i in chosen], dtype=np.int64),
        type_names=type_names,
        groups=np.array([group_names[group_of[i]] for i in chosen], dtype=np.int64),
        clean_views=clean,
        query_views=queries,
        query_owner=np.array(owner, dtype=np.int64),
        query_is_real=np.array([kind == "copy" for kind in kinds], dtype=bool),
        query_kind=np.array(kinds),
        val_products=val,
        consumer_views=consumer_views,
        consumer_labels=consumer_labels,
        consumer_val=np.array(consumer_val, dtype=bool),
        accepted={label: set(types) for label, types in mapping.article_types.items()},
        instance_views=instance_views,
        instance_owner=np.array(instance_owner, dtype=np.int64),
        holdout_ids=holdout,
        holdout_consumer=held_consumer,
        notes={"train_products_available": len(train_ids), "with_real_second_image": len(with_copies)},
    )


def pk_batches(rows: np.ndarray, types: np.ndarray, batch_types: int, per_type: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Every row once, in batches of up to ``batch_types`` groups of ``per_type`` rows of one type each.

    Types with fewer than two rows left join a mixed group (they still serve as negatives).
    """
    groups: list[np.ndarray] = []
    leftovers: list[int] = []
    for t in np.unique(types[rows]):
        members = rng.permutation(rows[types[rows] == t])
        for start in range(0, len(members), per_type):
            part = members[start : start + per_type]
            if len(part) >= 2:
                groups.append(part)
            else:
                leftovers.extend(part.tolist())
    for start in range(0, len(leftovers), per_type):
        groups.append(np.array(leftovers[start : start + per_type], dtype=np.int64))
    order = rng.permutation(len(groups))
    return [np.concatenate([groups[g] for g in order[s : s + batch_types]]) for s in range(0, len(order), batch_types)]


def recall_at_1(queries: np.ndarray, gallery: np.ndarray, owner: np.ndarray) -> float:
    """Share of query rows whose most similar gallery row is their own (exact cosine)."""
    if not len(queries):
        return float("nan")
    return float(((queries @ gallery.T).argmax(axis=1) == owner).mean())


def data_hash(config: TrainConfig, td: TrainData) -> str:
    digest = hashlib.sha1()
    for name in ("labels.csv", "duplicates.csv"):
        path = Path(config.catalog_dir) / name
        if path.exists():
            digest.update(path.read_bytes())
    for view in td.all_views():
        digest.update(view.key.encode())
    return digest.hexdigest()[:16]


def _lr_at(config: TrainConfig, step: int, total: int) -> float:
    """Cosine decay to 5 % of ``lr`` (a pure function of the step, so resuming needs no scheduler state)."""
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))


def view_maps(store: feats.FeatureStore, td: TrainData) -> dict[str, np.ndarray]:
    """The cached backbone maps (float16) of each kind of view, in ``td``'s order."""
    return {
        "clean": store.get_many_half([v.key for v in td.clean_views]),
        "query": store.get_many_half([v.key for v in td.query_views]),
        "consumer": store.get_many_half([v.key for v in td.consumer_views]),
        "instance": store.get_many_half([v.key for v in td.instance_views]),
    }


def train(
    config: TrainConfig,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    stop_after_epoch: int | None = None,
) -> dict:
    """Cache features, train, publish ``<models_dir>/<name>/``; returns the metadata.

    ``stop_after_epoch`` ends the run after that epoch with the state saved but nothing
    published (what an interrupted run leaves behind); ``resume=True`` continues it.
    """
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm


    config.check()
    started = time.perf_counter()
    out_dir = Path(config.models_dir) / config.name
    state_path = out_dir / STATE_FILE
    if (out_dir / finetuned.METADATA_FILE).exists() and not config.overwrite:
        raise TrainingError(f"Model {config.name!r} already exists in {out_dir}: pick a new name (a new version) or overwrite.")
    if state_path.exists() and not config.resume and not config.overwrite:
        raise TrainingError(f"{state_path} holds an unfinished run of {config.name!r}: resume it, or overwrite.")
    if not finetuned.tail_trainable(config.backbone) and config.train_last_stage:
        raise TrainingError(f"The last stage of {config.backbone!r} cannot be trained here; leave train_last_stage off.")

    # ------------------------------------------------------------ data and features
    td = training_data(config)
    log(
        f"training products {len(td.product_ids):,} (of {td.notes['train_products_available']:,} outside the hold-out; "
        f"{int(td.val_products.sum())} kept for validation), {len(td.query_views):,} query views "
        f"({int(td.query_is_real.sum())} real second images), {len(td.consumer_views):,} consumer photos; "
        f"hold-out: {len(td.holdout_ids):,} products, {td.holdout_consumer:,} consumer photos"
    )
    encoder = feats.TrunkEncoder(config.backbone, tail_blocks=config.tail_blocks)
    device = config.device or resolve_device(current_settings().device, torch.cuda.is_available)
    store = feats.store_open(config.cache_dir, encoder)
    t0 = time.perf_counter()
    views = td.all_views()
    try:
        with tqdm(total=len(views), unit="img", desc="backbone features", disable=None if progress is None else not progress) as bar:
            computed = feats.features_ensure(store, encoder, views, progress=bar.update)
        feature_seconds = time.perf_counter() - t0
        log(f"features: {computed:,} computed, {len(views) - computed:,} from the cache ({store.path}), {feature_seconds:.0f}s")
        maps = view_maps(store, td)
    finally:
        store.close()
    if config.train_last_stage:
        inputs = {k: torch.as_tensor(v) for k, v in maps.items()}  # float16 maps; the tail trains
    else:
        inputs = {k: torch.as_tensor(encoder.pool(v)) if len(v) else torch.zeros(0, encoder.embedder.dim) for k, v in maps.items()}

    # ------------------------------------------------------------ model
    torch.manual_seed(config.seed)
    head = finetuned.ProjectionHead(encoder.embedder.dim, config.dim, config.hidden, config.dropout).to(device)
    tail = None
    params = list(head.parameters())
    if config.train_last_stage:
        import copy

        tail = copy.deepcopy(encoder.tail).to(device)
        if config.tail_blocks:
            # Measured on 2,400 cached maps a step: 16.5 s contiguous, 15 s channels-last (float32).
            tail = tail.to(memory_format=torch.channels_last)
        for p in tail.parameters():
            p.requires_grad_(True)
        params += list(tail.parameters())
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    autocast = config.precision == "bfloat16"
    device_type = torch.device(device).type

    def embed(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            if tail is not None:
                x = x.float().reshape(-1, *encoder.shape)
                if config.tail_blocks:
                    x = x.contiguous(memory_format=torch.channels_last)
                x = tail(x)
            x = head(x.float())
        return F.normalize(x.float(), dim=1)

    history: list[dict] = []
    first_epoch = 0
    if config.resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("recipe") != json.loads(json.dumps(config.recipe())):
            raise TrainingError(f"{state_path} was made with other settings; overwrite it or use those settings.")
        head.load_state_dict(state["head"])
        if tail is not None:
            tail.load_state_dict(state["tail"])
        optimiser.load_state_dict(state["optimiser"])
        history = json.loads(state["history"])
        first_epoch = int(state["epoch"]) + 1
        log(f"resumed from {state_path} after epoch {first_epoch}")

    # ------------------------------------------------------------ the loop
    train_rows = np.flatnonzero(~td.val_products)
    val_rows = np.flatnonzero(td.val_products)
    queries_of = [np.flatnonzero(td.query_owner == r) for r in range(len(td.product_ids))]
    types_t = torch.as_tensor(td.product_types)
    groups_t = torch.as_tensor(td.groups)
    type_names = np.array(td.type_names)
    consumer_train = np.flatnonzero(~td.consumer_val)
    consumer_val = np.flatnonzero(td.consumer_val)
    instance_train = np.flatnonzero(~td.consumer_val[td.instance_owner]) if len(td.instance_views) else np.zeros(0, np.int64)
    instance_photos = np.unique(td.instance_owner[instance_train])
    edits_of = {int(p): instance_train[td.instance_owner[instance_train] == p] for p in instance_photos}
    accepted_by_label = {
        label: torch.as_tensor(np.isin(type_names[td.product_types], sorted(types))) for label, types in td.accepted.items()
    }
    steps_per_epoch = len(pk_batches(train_rows, td.product_types, config.batch_types, config.per_type, np.random.default_rng(0)))
    total_steps = steps_per_epoch * config.epochs
    t_train = time.perf_counter()
    epochs = range(first_epoch, config.epochs)
    bar = tqdm(epochs, unit="epoch", desc=f"training {config.name}", disable=None if progress is None else not progress)
    for epoch in bar:
        rng = np.random.default_rng([config.seed, epoch, 7])
        torch.manual_seed(config.seed * 100_003 + epoch)
        head.train()
        if tail is not None:
            # Eval mode: the ImageNet BN statistics stay (their affine parameters still train),
            # and the blocks' drop-connect is off, as it is when they are used.
            tail.eval()
        sums: dict[str, float] = {}
        batches = pk_batches(train_rows, td.product_types, config.batch_types, config.per_type, rng)
        for n, rows in enumerate(batches):
            step = epoch * steps_per_epoch + n
            for group in optimiser.param_groups:
                group["lr"] = _lr_at(config, step, total_steps)
            q = np.concatenate([queries_of[r] for r in rows])
            if not len(q):
                continue
            local = {int(r): i for i, r in enumerate(rows)}
            positive = torch.as_tensor([local[int(td.query_owner[i])] for i in q])
            g = embed(inputs["clean"][rows])
            a = embed(inputs["query"][q])
            rows_t = torch.as_tensor(rows)
            anchor_rows = rows_t[positive]
            negative_ok = groups_t[anchor_rows][:, None] != groups_t[rows_t][None, :]
            same_type = types_t[anchor_rows][:, None] == types_t[rows_t][None, :]
            loss, stats = triplet_loss_fn(a, g, positive.to(device), negative_ok.to(device), config.margin, config.mining,
                                          same_type.to(device), prefer_same_type=config.same_type)
            total = loss
            if config.consumer_weight > 0 and len(consumer_train):
                pick = rng.choice(consumer_train, size=min(config.consumer_batch, len(consumer_train)), replace=False)
                cand = rng.choice(train_rows, size=min(config.consumer_candidates, len(train_rows)), replace=False)
                accepted = torch.stack([accepted_by_label[td.consumer_labels[i]][cand] for i in pick])
                c_loss, c_stats = category_loss_fn(embed(inputs["consumer"][pick]), embed(inputs["clean"][cand]),
                                                   accepted.to(device), config.consumer_margin)
                total = total + config.consumer_weight * c_loss
                stats = {**stats, "consumer_loss": c_loss.item(), "consumer_active": c_stats["active"]}
            if config.instance_weight > 0 and len(instance_train):
                photos = rng.choice(instance_photos, size=min(config.instance_batch, len(instance_photos)), replace=False)
                edits = np.array([rng.choice(edits_of[p]) for p in photos])
                i_loss, i_stats = instance_loss_fn(embed(inputs["instance"][edits]), embed(inputs["consumer"][photos]),
                                                   config.instance_temperature)
                total = total + config.instance_weight * i_loss
                stats = {**stats, "instance_loss": i_loss.item(), **i_stats}
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            stats = {**stats, "loss": total.item(), "triplet_loss": loss.item()}
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
        record = {"epoch": epoch + 1, **{k: v / max(len(batches), 1) for k, v in sums.items()}}
        record["lr"] = _lr_at(config, (epoch + 1) * steps_per_epoch, total_steps)
        if len(val_rows):
            head.eval()
            if tail is not None:
                tail.eval()
            with torch.inference_mode():
                vq = np.flatnonzero(np.isin(td.query_owner, val_rows) & (td.query_kind == "synthetic"))
                gal = embed(inputs["clean"][val_rows]).cpu().numpy()
                qv = embed(inputs["query"][vq]).cpu().numpy() if len(vq) else np.zeros((0, config.dim), np.float32)
            owner_pos = np.searchsorted(val_rows, td.query_owner[vq])
            record["val_views_r1"] = recall_at_1(qv, gal, owner_pos)
        if len(consumer_val):
            # Precision@10 of held-back contributors' photos against every chosen product's shop photo.
            with torch.inference_mode():
                gal = embed(inputs["clean"]).cpu().numpy()
                cv = embed(inputs["consumer"][consumer_val]).cpu().numpy()
            top = np.argsort(-(cv @ gal.T), axis=1)[:, :10]
            hits = [accepted_by_label[td.consumer_labels[i]].numpy()[row].mean() for i, row in zip(consumer_val, top, strict=True)]
            record["val_consumer_p10"] = float(np.mean(hits))
            val_edits = np.flatnonzero(np.isin(td.instance_owner, consumer_val))
            if len(val_edits):
                # Edited copies of held-back photos against all held-back photos: told apart?
                with torch.inference_mode():
                    ev = embed(inputs["instance"][val_edits]).cpu().numpy()
                record["val_instance_r1"] = recall_at_1(ev, cv, np.searchsorted(consumer_val, td.instance_owner[val_edits]))
        history.append(record)
        bar.set_postfix(loss=f"{record.get('loss', float('nan')):.4f}", val_r1=f"{record.get('val_views_r1', float('nan')):.3f}")
        out_dir.mkdir(parents=True, exist_ok=True)
        state = {"epoch": epoch, "head": head.state_dict(), "optimiser": optimiser.state_dict(),
                 "history": json.dumps(history), "recipe": json.loads(json.dumps(config.recipe()))}
        if tail is not None:
            state["tail"] = tail.state_dict()
        tmp = state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(state_path)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < config.epochs:
            bar.close()
            log(f"stopped after epoch {epoch + 1} (state in {state_path})")
            return {"stopped_after_epoch": epoch + 1, "history": history}
    bar.close()
    train_seconds = time.perf_counter() - t_train

    # ------------------------------------------------------------ publish
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {f"head.{k}": v.detach().cpu() for k, v in head.state_dict().items()}
    if tail is not None:
        weights.update({f"tail.{k}": v.detach().cpu() for k, v in tail.state_dict().items()})
    torch.save(weights, out_dir / finetuned.WEIGHTS_FILE)
    curve = out_dir / CURVE_FILE
    loss_curve_png(history, curve, config.name)
    metadata = {
        "format": finetuned.CHECKPOINT_FORMAT,
        "name": config.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "backbone": config.backbone,
        "dim": config.dim,
        "head": {"in_dim": encoder.embedder.dim, "hidden": config.hidden, "out_dim": config.dim},
        "train_last_stage": config.train_last_stage,
        "tail_blocks": config.tail_blocks,
        "precision": config.precision,
        "seed": config.seed,
        "epochs": config.epochs,
        "recipe": config.recipe(),
        "resize_policy": encoder.embedder.resize_policy,
        "data": {
            "catalog_dir": str(config.catalog_dir),
            "consumer_dir": str(config.consumer_dir),
            "data_hash": data_hash(config, td),
            "train_products": len(td.product_ids) - int(td.val_products.sum()),
            "val_products": int(td.val_products.sum()),
            "train_products_digest": ids_digest(td.product_ids),
            "query_views": len(td.query_views),
            "real_second_images": int(td.query_is_real.sum()),
            "thumbnail_views": int((td.query_kind == "thumbnail").sum()),
            "consumer_photo_edits": len(td.instance_views),
            "synthetic_views_per_product": config.views,
            "synthetic_recipe_version": feats.synthetic.SYNTHETIC_VERSION,
            "consumer_photos": len(td.consumer_views) - int(td.consumer_val.sum()),
            "val_consumer_photos": int(td.consumer_val.sum()),
            **td.notes,
        },
        "holdout": {
            **config.split.to_dict(),
            "products": len(td.holdout_ids),
            "products_digest": ids_digest(td.holdout_ids),
            "consumer_photos": td.holdout_consumer,
            "rule": "product: sha1(salt:product:<smallest id of its copy group>) < product_fraction; "
                    "consumer photo: sha1(salt:consumer:sender:<sender_id>) < consumer_fraction",
        },
        "history": history,
        "final": history[-1] if history else {},
        "timings": {"feature_seconds": round(feature_seconds, 1), "features_computed": computed,
                    "train_seconds": round(train_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1)},
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loss_curve": CURVE_FILE,
        "metrics": {},
    }
    (out_dir / finetuned.METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    state_path.unlink(missing_ok=True)
    log(f"published {out_dir} ({config.dim}-d; loss curve {curve}) in {metadata['timings']['total_seconds']:.0f}s")
    return metadata


def triplet_loss_fn(*args, **kwargs):
    return triplet_loss(*args, **kwargs)


def category_loss_fn(*args, **kwargs):
    return category_loss(*args, **kwargs)


def instance_loss_fn(*args, **kwargs):
    return instance_loss(*args, **kwargs)


def loss_curve_png(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [h["epoch"] for h in history]
    for key, label in (("loss", "total loss"), ("triplet_loss", "triplet loss"), ("consumer_loss", "category loss")):
        if any(key in h for h in history):
            ax.plot(epochs, [h.get(key, float("nan")) for h in history], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if any("val_views_r1" in h for h in history):
        ax2 = ax.twinx()
        ax2.plot(epochs, [h.get("val_views_r1", float("nan")) for h in history], "k--", label="val views R@1")
        if any("val_consumer_p10" in h for h in history):
            ax2.plot(epochs, [h.get("val_consumer_p10", float("nan")) for h in history], "k:", label="val consumer P@10")
        ax2.set_ylabel("validation")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


__all__ = ["DEFAULT_NAME", "TrainConfig", "TrainData", "TrainingError", "pk_batches", "train", "training_data"]
