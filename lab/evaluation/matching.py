"""Matching quality as a shopper sees it (``manage.py evaluate_matching``): the targets of the
"quality by default" work, on a fine-tuned model's hold-out, for several models side by side.

Per model, with exact cosine search over the hold-out gallery (the held-out products'
catalogue photos, embedded as the catalogue is; every query set is embedded as serving embeds
a shopper's whole photo, with the model's query crop: ``Encoder.for_queries``):

* **copies R@1** and **consumer-like views R@1** (as ``evaluate``);
* **consumer photos -> category P@10**, plain, and **with the system**: the model's category
  classifier narrows the search to its guess when confident (widened by its next guesses, then
  to the parent, when the category holds fewer than ``MIN_CATEGORY_PRODUCTS`` gallery products:
  ``categories.narrowing_scope``), as the storefront does; for a model without a classifier, the
  nearest-neighbour vote serving uses;
* **top-8 garment share**: the share of the top 8 of the same garment type, whole photo, no
  filters, with the system (P@8);
* **top-1 category accuracy** of the classifier on held-out consumer photos, per label;
* **telling consumer photos apart**: an edited copy of each held-out consumer photo (crop,
  mirror, colour, rescale, JPEG; ``synthetic.photo_variant``, seed 0) must find its own photo
  among all held-out consumer photos (R@1), and the share of (same photo, other photo) pairs
  ranked right (AUC); ImageNet features are good at this, and a shipped model must not lose;
* **colour**: the share of the top 10 with the query's baseColour, for consumer-like views,
  without and with the colour term. Its weight is *chosen* on training-side products (a
  seeded subset of the training split's catalogue photos and their views, never the
  hold-out) and only *reported* on the hold-out;
* **narrowing gate**: "with the system" narrows to a confident guess only while the query's
  nearest gallery product is below the gate (serving's ``SearchSettings.narrow_gate``), chosen
  on the training side before the category term (``NARROW_GATES``) and reported with the
  views' R@1 as served without it;
* **the same-photo pin**: a query that is a copy of a gallery photo by the duplicate
  detector's rule (serving's ``images_same_photo``: hash bands, then
  ``detection.same_photo_ranked``) has that product first, as a photo search shows it;
  **copies R@1 as served**, the views' R@1 as served and the numbers "with the system"
  include it, and the report counts the pins of each query set and how many were right
  (consumer photos should have none);
* **relevance floor**: the cosine under which the top result is more often wrong than right
  (category of the top-1), chosen on training-side consumer photos, reported on the hold-out
  as the share of searches that would say "nothing close";
* **category term**: "with the system" also re-ranks the search's candidates (the nearest
  ``TOP * COLOUR_CANDIDATES_FACTOR + FOLD_HEADROOM``, as serving fetches them) by the cosine
  plus a weight times the classifier's probability of each product's category, unless the
  nearest candidate's cosine reaches a gate. Weight and gate are *chosen* on the training side
  (``CATEGORY_WEIGHTS``: the training-side views must keep their R@1 as served, then P@10 on
  the consumer photos the classifier's training held back for its own validation decides)
  and *reported* on the hold-out, with the system's numbers without the term and the
  hold-out views' R@1 as served.

``--record`` writes the chosen colour weight, category weight and gate, and floor into each fine-tuned
model's ``metadata.json`` ("search"), where serving reads them: the models trained here (``var/models``)
and the run's hold-out model; a shipped model that is only compared is left as committed
(``ship_model`` writes the model it ships).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lab import datasets, synthetic
from lab.cache import encode_cached, file_key
from lab.evaluation.quality import encoder_caches, encoder_for, holdout_split
from lab.metrics import exact_top_k
from lab.reports import json_write, machine_info, md_table, text_table
from lab.split import HoldoutSplit, validation_contributor, validation_product
from visualsearch.categories import (
    GUESSES_SHOWN,
    MIN_CATEGORY_PRODUCTS,
    VOTE_AUTO_THRESHOLD,
    VOTE_NEIGHBOURS,
    VOTE_TEMPERATURE,
)
from visualsearch.colour import ColourProfile, garment_profile, studio_profile
from visualsearch.duplicates.detection import DEFAULT_THRESHOLDS, Fingerprint, fingerprint, same_photo_ranked, upload_fingerprint
from visualsearch.embedding import load_embedder
from visualsearch.embedding import model_metadata
from visualsearch.embedding import config as embedding_config
from visualsearch.embedding.config import FINETUNED_METADATA, is_finetuned, model_folder
from visualsearch.models import PhotoSearch
from visualsearch.selectors import COLOUR_CANDIDATES_FACTOR, FOLD_HEADROOM, SAME_PHOTO_CANDIDATES

COLOUR_WEIGHTS = (0.0, 0.02, 0.05, 0.08, 0.12, 0.16, 0.2)
# The colour weight may not cost views R@1 more than this on the selection set.
COLOUR_MAX_R1_LOSS = 0.01
# The category term (serving's selectors.CategoryTerm): weights (0: off) and gates (the
# nearest candidate's cosine from which it is left out; above 1: never) tried on the
# training side. A pair must keep the selection views' R@1, as served, within
# CATEGORY_MAX_R1_LOSS of the search without the term (a shopper photographing one product
# must still find that product first); among those, P@10 on the classifier's validation
# consumer photos decides, and pairs within CATEGORY_P10_TOLERANCE of the best are a plateau
# (a few hundred photos: 243 for v7), of which the smallest weight, then the lowest gate, is
# taken: it moves the results least.
CATEGORY_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0)
CATEGORY_GATES = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 2.0)
CATEGORY_MAX_R1_LOSS = 0.005
CATEGORY_P10_TOLERANCE = 0.005
# The narrowing gate (serving's SearchSettings.narrow_gate): a confident category guess
# narrows the search only while the nearest product of the whole catalogue is below this
# cosine (above 1: always). A shopper photographing one product must still find it when the
# guess of its category is wrong. Chosen first, on the training side: the gate that keeps the
# most selection views' R@1 as served, among those whose classifier-validation P@10 is within
# CATEGORY_P10_TOLERANCE of the best; of equals, the highest (it narrows most, as before).
NARROW_GATES = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 2.0)
# The groups of ``matching_run`` embedded as catalogue photos; every other group is a query.
GALLERY_GROUPS = frozenset({"gallery", "select_gallery"})
TRAIN_SIDE_PRODUCTS = 1500
TRAIN_SIDE_VIEWS = 500
EVAL_SEED = 0
TOP = 10
CANDIDATES = TOP * COLOUR_CANDIDATES_FACTOR + FOLD_HEADROOM


@dataclass
class MatchingOptions:
    models: tuple[str, ...]
    holdout_model: str
    out_dir: Path
    cache_dir: Path
    record: bool = False
    command: str | None = None
    catalog_dir: Path = datasets.CATALOG_DIR
    consumer_dir: Path = datasets.CONSUMER_DIR
    # Smaller runs (the backbone comparison): views and consumer photos per label; None = all.
    views: int = 1000
    consumer_per_label: int | None = None
    select_products: int = TRAIN_SIDE_PRODUCTS
    select_views: int = TRAIN_SIDE_VIEWS
    select_consumer_per_label: int | None = None
    # model -> an earlier model of the run whose chosen search settings (colour weight, category
    # weight and gate, floor) it is scored with instead of choosing its own: ship_model's float16
    # copy takes its float32 original's, so that the comparison measures the precision alone (a
    # choice at the edge of its rule can flip on one view of 500: v10's gate 0.45 -> 0.5).
    settings_from: dict[str, str] = field(default_factory=dict)
    # The category term's gates tried (None: CATEGORY_GATES). The rule sees whole photos only;
    # shop the look's garment crops (``evaluate_looks --validation``) may be better served by one
    # gate, which a run then fixes (``--category-gate``): the weight is still chosen by the rule.
    category_gates: tuple[float, ...] | None = None


@dataclass
class Sets:
    gallery: list[datasets.CatalogItem]
    copies: list[datasets.CopyPair]
    views: list[tuple[datasets.CatalogItem, Path]]
    consumer: list[datasets.ConsumerPhoto]
    edits: list[Path]  # one edited copy per consumer photo, in the same order
    select_gallery: list[datasets.CatalogItem]  # training side: chooses the colour weight
    select_views: list[tuple[datasets.CatalogItem, Path]]
    select_consumer: list[datasets.ConsumerPhoto]  # training side: chooses the floor
    # Per gallery row, the rows holding the same bytes (itself included): a query that finds
    # a twin has found the photo (datasets.identical_files; read once, every model uses them).
    twins: list[set[int]] = field(default_factory=list)
    select_twins: list[set[int]] = field(default_factory=list)
    notes: dict = field(default_factory=dict)


def _made(folder: Path, name: str, make: Callable[[], Image.Image]) -> Path:
    path = folder / f"{name}.jpg"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        make().save(tmp, format="JPEG", quality=95)
        tmp.replace(path)
    return path


def sets_build(options: MatchingOptions, log: Callable[[str], None]) -> Sets:
    split: HoldoutSplit = holdout_split(options.holdout_model)
    catalogue = datasets.catalog_read(options.catalog_dir)
    held = split.product_holdout([item.id for item in catalogue], options.catalog_dir)
    gallery = [item for item in catalogue if item.id in held]
    train_side = [item for item in catalogue if item.id not in held]
    copies = [c for c in datasets.copies_read(options.catalog_dir) if c.id in held]
    views_dir = options.cache_dir / "synthetic_views" / f"v{synthetic.SYNTHETIC_VERSION}_seed{EVAL_SEED}"
    edits_dir = options.cache_dir / "consumer_edits" / f"v{synthetic.SYNTHETIC_VERSION}_seed{EVAL_SEED}"
    views_dir.mkdir(parents=True, exist_ok=True)
    edits_dir.mkdir(parents=True, exist_ok=True)

    def views_of(items):
        return [(item, _made(views_dir, item.id, lambda i=item: synthetic.consumer_view(Image.open(i.path), EVAL_SEED, i.id)))
                for item in items]

    photos = datasets.consumer_read(options.consumer_dir) if (options.consumer_dir / "labels.csv").exists() else []
    consumer = datasets.stratified_sample(
        [p for p in photos if split.consumer_is_holdout(p.sender_id, p.id)], options.consumer_per_label, EVAL_SEED
    )
    select_consumer = datasets.stratified_sample(
        [p for p in photos if not split.consumer_is_holdout(p.sender_id, p.id)], options.select_consumer_per_label, EVAL_SEED
    )
    # The selection's views are of products the model's training held back (its validation
    # products), where it records them: views of a product trained on flatter the category
    # classifier, which knows its type by heart (v10's 1,024-wide classifier lost no training-side
    # view to a category term that cost the hold-out's views 0.021 of R@1). The rest of the
    # selection gallery is the training side's.
    held_back = validation_product_of(options.holdout_model)
    pool = [item for item in train_side if held_back(item.id)] if held_back else train_side
    view_items = datasets.sample(pool, options.select_views, EVAL_SEED, "matching-select-views")
    chosen = {item.id for item in view_items}
    others = datasets.sample([item for item in train_side if item.id not in chosen],
                             max(options.select_products - len(view_items), 0), EVAL_SEED, "matching-select")
    chosen |= {item.id for item in others}
    select_gallery = [item for item in train_side if item.id in chosen]
    sets = Sets(
        gallery=gallery,
        copies=copies,
        views=views_of(datasets.sample(gallery, options.views, EVAL_SEED, "synthetic")),
        consumer=consumer,
        edits=[_made(edits_dir, p.id, lambda p=p: synthetic.photo_variant(Image.open(p.path), EVAL_SEED, p.id)) for p in consumer],
        select_gallery=select_gallery,
        select_views=views_of(view_items),
        select_consumer=select_consumer,
        twins=datasets.identical_files([g.path for g in gallery]),
        select_twins=datasets.identical_files([g.path for g in select_gallery]),
    )
    log(f"hold-out of {options.holdout_model}: gallery {len(gallery):,}, copies {len(copies):,}, views {len(sets.views):,}, "
        f"consumer photos {len(consumer):,} (+ as many edits); selection (training side): {len(select_gallery):,} products, "
        f"{len(sets.select_views):,} views{' of its validation products' if held_back else ''}, {len(select_consumer):,} consumer photos")
    return sets


def _encode(name: str, groups: dict[str, list[Path]], cache_dir: Path, log) -> dict[str, np.ndarray]:
    """Vectors per group: the galleries as the catalogue is embedded, the rest as serving
    embeds a shopper's photo (``Encoder.for_queries``)."""
    encoder = encoder_for(name)
    out, computed = {}, 0
    started = time.perf_counter()
    with encoder_caches(encoder, cache_dir) as (queries, caches):
        for group, paths in groups.items():
            loaders = [lambda p=p: Image.open(p) for p in paths]
            used = encoder if group in GALLERY_GROUPS else queries
            out[group], n = encode_cached(caches[used.fingerprint], [file_key(p) for p in paths], loaders, used.encode, encoder.dim)
            computed += n
    log(f"  {name}: {computed:,} images encoded now, the rest from the cache ({time.perf_counter() - started:.0f}s)")
    return out


def _profiles_studio(items: Sequence[datasets.CatalogItem]) -> list[ColourProfile | None]:
    return [studio_profile(fingerprint(Image.open(item.path)).colour) for item in items]


def _upload_prints(paths: Sequence[Path]) -> list[Fingerprint]:
    """Each query's fingerprint as a photo search takes it: of the photo kept (RGB, shrunk to
    ``PhotoSearch.STORED_SIDE``), reduced as ``upload_fingerprint`` reduces it."""
    out = []
    for path in paths:
        kept = Image.open(path).convert("RGB")
        kept.thumbnail((PhotoSearch.STORED_SIDE, PhotoSearch.STORED_SIDE))
        out.append(upload_fingerprint(kept))
    return out


def _hash_words(prints: Sequence[Fingerprint]) -> np.ndarray:
    """(n, 2, 4) uint64: the whole and the trimmed hash of each fingerprint."""
    words = [np.frombuffer(int(h, 16).to_bytes(32, "big"), dtype=">u8") for f in prints for h in (f.phash, f.phash_trim)]
    return np.asarray(words, dtype=np.uint64).reshape(len(prints), 2, 4)


def same_photo_rows(queries: Sequence[Fingerprint], query_vectors: np.ndarray, gallery: Sequence[Fingerprint],
                    gallery_vectors: np.ndarray) -> np.ndarray:
    """Per query, the gallery row a photo search pins first as the listing whose photo it is,
    or -1: serving's ``images_same_photo`` over the gallery (a shared hash band, within the
    rule's reach, the nearest SAME_PHOTO_CANDIDATES, then ``same_photo_ranked``)."""
    out = np.full(len(queries), -1)
    if not len(queries) or not len(gallery):
        return out
    g_words, g_bands = _hash_words(gallery), np.array([f.bands() for f in gallery])
    most = DEFAULT_THRESHOLDS.max_hash_distance()
    for n, query in enumerate(queries):
        distance = np.bitwise_count(g_words ^ _hash_words([query])[0]).sum(axis=2).min(axis=1)
        shared = (g_bands == np.array(query.bands())[None, :]).any(axis=1)  # tagged values: && is equality in place
        rows = np.flatnonzero(shared & (distance <= most))
        rows = rows[np.lexsort((rows, distance[rows]))][:SAME_PHOTO_CANDIDATES]
        cosines = gallery_vectors[rows] @ query_vectors[n]
        ranked = same_photo_ranked(query, [(int(r), gallery[r], float(c)) for r, c in zip(rows, cosines, strict=True)])
        if ranked:
            out[n] = ranked[0][0]
    return out


def _pinned(scores: np.ndarray, pins: np.ndarray | None) -> np.ndarray:
    """``scores`` with each query's pinned row first (serving puts the listing whose photo the
    query is above everything; the rest of such a query's ranking is left as it was)."""
    if pins is None or not (pins >= 0).any():
        return scores
    out = scores.copy()
    rows = np.flatnonzero(pins >= 0)
    out[rows, pins[rows]] = np.inf
    return out


def _profiles_photo(paths: Sequence[Path]) -> list[ColourProfile | None]:
    return [garment_profile(Image.open(path)) for path in paths]


def _colour_matrix(queries: Sequence[ColourProfile | None], gallery: Sequence[ColourProfile | None]) -> np.ndarray:
    q = np.stack([p.shares if p is not None else np.full(16, 1 / 16) for p in queries])
    g = np.stack([p.shares if p is not None else np.full(16, 1 / 16) for p in gallery])
    return np.minimum(q[:, None, :], g[None, :, :]).sum(axis=2)


def _ranking(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _recall1(queries: np.ndarray, gallery: np.ndarray, correct_rows: Sequence[set[int]]) -> float:
    top = exact_top_k(queries, gallery, 1)[:, 0]
    return float(np.mean([row in rows for row, rows in zip(top, correct_rows, strict=True)])) if len(top) else float("nan")


def _scope_masks(gallery: Sequence[datasets.CatalogItem]) -> Callable[[Sequence[str]], np.ndarray | None]:
    """the likeliest guesses (articleTypes, most likely first) -> the gallery rows a search narrowed
    to the first would keep, as ``categories.narrowing_scope`` widens it while it holds fewer
    than MIN_CATEGORY_PRODUCTS: by the next guesses, else to the sub-category, then the master
    category."""
    types = np.array([g.article_type for g in gallery])
    subs = np.array([g.sub_category for g in gallery])
    masters = np.array([g.master_category for g in gallery])
    parent = {g.article_type: (g.sub_category, g.master_category) for g in gallery}

    def scope(labels: Sequence[str]) -> np.ndarray | None:
        label = labels[0]
        mask = types == label
        if mask.sum() >= MIN_CATEGORY_PRODUCTS or label not in parent:
            return mask if mask.any() else None
        for n in range(1, len(labels)):
            union = np.isin(types, list(labels[: n + 1]))
            if union.sum() >= MIN_CATEGORY_PRODUCTS:
                return union
        sub, master = parent[label]
        mask = subs == sub
        if mask.sum() >= MIN_CATEGORY_PRODUCTS:
            return mask
        mask = masters == master
        return mask if mask.sum() >= MIN_CATEGORY_PRODUCTS else None

    return scope


def _system_guesses(name: str, vectors: np.ndarray, gallery_vectors: np.ndarray, gallery: Sequence[datasets.CatalogItem]):
    """(label, probability, threshold, the GUESSES_SHOWN likeliest labels, most likely first)
    per query: the classifier's guess, or the neighbour vote."""
    head = load_embedder(name).category_head
    if head is not None:
        probs = head.probabilities(vectors)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :GUESSES_SHOWN]
        return [
            (head.labels[row[0]], float(probs[n, row[0]]), head.auto_threshold, tuple(head.labels[i] for i in row))
            for n, row in enumerate(order)
        ], "classifier"
    types = np.array([g.article_type for g in gallery])
    out = []
    scores = vectors @ gallery_vectors.T
    for row in range(len(vectors)):
        nearest = np.argsort(-scores[row])[:VOTE_NEIGHBOURS]
        weights = np.exp((scores[row, nearest] - 1) / VOTE_TEMPERATURE)
        votes: dict[str, float] = {}
        for t, w in zip(types[nearest], weights, strict=True):
            votes[t] = votes.get(t, 0.0) + float(w)
        total = sum(votes.values())
        ranked = sorted(((t, w / total) for t, w in votes.items()), key=lambda tw: -tw[1])
        out.append((ranked[0][0], ranked[0][1], VOTE_AUTO_THRESHOLD, tuple(t for t, _ in ranked[:GUESSES_SHOWN])))
    return out, "neighbours"


def _narrowed(scores: np.ndarray, guesses, scope, gate: float = np.inf) -> tuple[np.ndarray, int]:
    """``scores`` with every search whose guess is confident narrowed to its category's scope
    (the rest -inf), unless its nearest product reaches the narrowing ``gate`` and lies outside
    that scope, as serving narrows them; and how many were."""
    nearest = scores.max(axis=1) if len(scores) else np.zeros(0)
    top = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=int)
    scores = scores.copy()
    narrowed = 0
    for n, (_, probability, threshold, shown) in enumerate(guesses):
        mask = scope(shown) if probability >= threshold else None
        if mask is not None and (nearest[n] < gate or mask[top[n]]):
            scores[n] = np.where(mask, scores[n], -np.inf)
            narrowed += 1
    return scores, narrowed


def _category_prior(name: str, vectors: np.ndarray, gallery: Sequence[datasets.CatalogItem]) -> np.ndarray | None:
    """(queries, gallery): the classifier's probability that each query shows the gallery
    item's articleType (0 for a type it does not know); None without a classifier."""
    head = load_embedder(name).category_head
    if head is None:
        return None
    column = {label: n for n, label in enumerate(head.labels)}
    rows = np.array([column.get(item.article_type, -1) for item in gallery])
    probabilities = head.probabilities(vectors)
    return np.where(rows[None, :] >= 0, probabilities[:, np.maximum(rows, 0)], 0.0)


def _category_term(scores: np.ndarray, prior: np.ndarray | None, weight: float, gate: float = np.inf) -> np.ndarray:
    """Serving's re-ranking: the CANDIDATES best of each row by ``scores``, scored again with
    ``weight`` times ``prior``, everything else -inf; rows whose best score is ``gate`` or
    more stay as they are."""
    if prior is None or weight <= 0:
        return scores
    out = np.full_like(scores, -np.inf)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :CANDIDATES]
    rows = np.arange(len(scores))[:, None]
    kept = np.isfinite(scores[rows, top])
    out[rows, top] = np.where(kept, scores[rows, top] + weight * prior[rows, top], -np.inf)
    gated = scores.max(axis=1) >= gate
    out[gated] = scores[gated]
    return out


def served_before_term(name: str, queries: np.ndarray, gallery_vectors: np.ndarray,
                       gallery: Sequence[datasets.CatalogItem], narrow_gate: float = np.inf) -> tuple[np.ndarray, np.ndarray | None]:
    """What serving's category term starts from: the scores narrowed to a confident guess
    (below the narrowing gate), and the classifier's prior (None without a classifier).
    Neither depends on the term's weight or gate, so trying several of those needs them once."""
    guesses, _ = _system_guesses(name, queries, gallery_vectors, gallery)
    narrowed, _ = _narrowed(queries @ gallery_vectors.T, guesses, _scope_masks(gallery), narrow_gate)
    return narrowed, _category_prior(name, queries, gallery)


def served_scores(name: str, queries: np.ndarray, gallery_vectors: np.ndarray, gallery: Sequence[datasets.CatalogItem],
                  weight: float, gate: float, narrow_gate: float = np.inf) -> np.ndarray:
    """Scores as serving ranks them: narrowed to a confident guess, then the category term."""
    return _category_term(*served_before_term(name, queries, gallery_vectors, gallery, narrow_gate), weight, gate)


def _top1_hits(scores: np.ndarray, correct_rows: Sequence[set[int]]) -> int:
    """Queries whose best-scored row is one of their correct rows."""
    return sum(int(row in rows) for row, rows in zip(scores.argmax(axis=1), correct_rows, strict=True))


def _validation_split(name: str) -> tuple[int, float] | None:
    """(seed, fraction) of the validation ``name``'s training held back, as its metadata
    records; None for a model that records no split (an ImageNet backbone)."""
    metadata = model_metadata(name)
    recipe = metadata.get("recipe") if isinstance(metadata.get("recipe"), dict) else {}
    if "seed" not in metadata or "val_fraction" not in recipe:
        return None
    return int(metadata["seed"]), float(recipe["val_fraction"])


def validation_consumer_of(name: str) -> Callable[[datasets.ConsumerPhoto], bool] | None:
    """Whether a training-side consumer photo was held back by ``name``'s training for
    validation (its contributor); None for a model that records no split."""
    split = _validation_split(name)
    if split is None:
        return None
    return lambda photo: validation_contributor(photo, seed=split[0], fraction=split[1])


def validation_product_of(name: str) -> Callable[[str], bool] | None:
    """Whether a training-side product (its id) was held back by ``name``'s training for
    validation; None for a model that records no split."""
    split = _validation_split(name)
    if split is None:
        return None
    return lambda product_id: validation_product(product_id, seed=split[0], fraction=split[1])


def _category_weight_choose(
    name: str, sets: Sets, vectors: dict[str, np.ndarray], mapping: datasets.LabelMapping,
    gates: Sequence[float] = CATEGORY_GATES,
) -> tuple[float, float, float, dict]:
    """The narrowing gate (the rule of NARROW_GATES), then the category term's (weight, gate)
    at that gate (the rule of CATEGORY_WEIGHTS): P@10 as served on the consumer photos the
    model's classifier held back (its training's validation contributors) against the
    training-side gallery, views R@1 as served on the training-side views. (0, no gate, no
    narrowing gate) for a model without a classifier or a recorded split."""
    none = (0.0, CATEGORY_GATES[-1], NARROW_GATES[-1], {})
    held_back = validation_consumer_of(name)
    if load_embedder(name).category_head is None or held_back is None:
        return none
    gallery_vectors = vectors["select_gallery"]
    types = np.array([g.article_type for g in sets.select_gallery])
    rows = [n for n, p in enumerate(sets.select_consumer) if p.label in mapping.article_types and held_back(p)]
    if not rows or not sets.select_views:
        return none
    queries = vectors["select_consumer"][rows]
    relevant = np.stack([np.isin(types, list(mapping.article_types[sets.select_consumer[n].label])) for n in rows])
    row_of = {item.id: n for n, item in enumerate(sets.select_gallery)}
    views_right = [sets.select_twins[row_of[item.id]] for item, _ in sets.select_views]

    def p10_of(scores: np.ndarray) -> float:
        return float(_precision_at(_ranking(scores, TOP), relevant, 10).mean())

    narrow_trials = {}
    for narrow_gate in NARROW_GATES:
        narrow_views = served_before_term(name, vectors["select_views"], gallery_vectors, sets.select_gallery, narrow_gate)[0]
        narrow_photos = served_before_term(name, queries, gallery_vectors, sets.select_gallery, narrow_gate)[0]
        narrow_trials[narrow_gate] = (p10_of(narrow_photos), _top1_hits(narrow_views, views_right))
    best_p10 = max(p for p, _ in narrow_trials.values())
    near_best = {g: hits for g, (p, hits) in narrow_trials.items() if p >= best_p10 - CATEGORY_P10_TOLERANCE}
    narrow_gate = max(g for g, hits in near_best.items() if hits == max(near_best.values()))

    views = served_before_term(name, vectors["select_views"], gallery_vectors, sets.select_gallery, narrow_gate)
    photos = served_before_term(name, queries, gallery_vectors, sets.select_gallery, narrow_gate)

    def views_hits(weight: float, gate: float) -> int:
        return _top1_hits(_category_term(*views, weight, gate), views_right)

    def p10(weight: float, gate: float) -> float:
        return p10_of(_category_term(*photos, weight, gate))

    base_hits = views_hits(0.0, CATEGORY_GATES[-1])
    allowed = int(CATEGORY_MAX_R1_LOSS * len(views_right))  # in views, not floats: no rounding at the edge
    trials = {}
    for weight in CATEGORY_WEIGHTS:
        for gate in gates if weight > 0 else CATEGORY_GATES[-1:]:
            trials[(weight, gate)] = (p10(weight, gate), views_hits(weight, gate))
    feasible = {key: p for key, (p, hits) in trials.items() if hits >= base_hits - allowed}
    best = max(feasible.values())
    weight, gate = min(key for key, p in feasible.items() if p >= best - CATEGORY_P10_TOLERANCE)
    selection = {
        "photos": len(rows), "views": len(views_right), "views_r1_without": base_hits / len(views_right),
        "narrow_trials": {str(g): {"p10": p, "views_r1": hits / len(views_right)} for g, (p, hits) in narrow_trials.items()},
        "trials": {f"{w}/{g}": {"p10": p, "views_r1": hits / len(views_right)} for (w, g), (p, hits) in trials.items()},
    }
    return weight, gate, narrow_gate, selection


def _precision_at(ranking: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    return np.array([relevant[n][ranking[n, :k]].mean() for n in range(len(ranking))])


def chosen_settings(report: dict) -> dict:
    """The search settings ``model_report`` chose for a model (what ``--record`` writes)."""
    return {
        "colour_weight": report["colour"]["weight"],
        "category_weight": report["system"]["category_weight"],
        "category_gate": report["system"]["category_gate"],
        "narrow_gate": report["system"]["narrow_gate"],
        "relevance_floor": report["relevance_floor"]["floor"],
    }


def model_report(
    name: str, sets: Sets, vectors: dict[str, np.ndarray], colour: dict, mapping: datasets.LabelMapping, log,
    settings: dict | None = None, prints: dict[str, list[Fingerprint]] | None = None,
    category_gates: Sequence[float] | None = None,
) -> dict:
    """``name``'s hold-out report; its search settings chosen on the training side, or
    ``settings`` (``chosen_settings`` of another report) used as they are. With ``prints``
    (fingerprints of the gallery and the queries) the numbers "as served" include the
    same-photo pin."""
    gallery = vectors["gallery"]
    row_of = {item.id: row for row, item in enumerate(sets.gallery)}
    out: dict = {"dim": int(gallery.shape[1])}
    copies_correct = [sets.twins[row_of[c.id]] for c in sets.copies]
    out["copies_r1"] = _recall1(vectors["copies"], gallery, copies_correct)
    views_correct = [sets.twins[row_of[item.id]] for item, _ in sets.views]
    out["views_r1"] = _recall1(vectors["views"], gallery, views_correct)
    pins = {group: same_photo_rows(prints[group], vectors[group], prints["gallery"], gallery)
            for group in ("copies", "views", "consumer")} if prints else {}
    if pins:
        def pin_counts(group: str, correct: Sequence[set[int]] | None) -> dict:
            pinned = pins[group] >= 0
            right = sum(int(row in correct[n]) for n, row in enumerate(pins[group]) if row >= 0) if correct is not None else None
            return {"queries": len(pins[group]), "pinned": int(pinned.sum()), "right": right}

        out["copies_r1_served"] = _top1_hits(_pinned(vectors["copies"] @ gallery.T, pins["copies"]), copies_correct) / max(len(copies_correct), 1)
        out["same_photo"] = {"copies": pin_counts("copies", copies_correct), "views": pin_counts("views", views_correct),
                             "consumer_photos": pin_counts("consumer", None)}

    # Consumer photos -> category, plain and with the system.
    types = np.array([g.article_type for g in sets.gallery])
    accepted = {label: np.isin(types, list(ts)) for label, ts in mapping.article_types.items()}
    usable = [n for n, p in enumerate(sets.consumer) if p.label in accepted]
    consumer = vectors["consumer"][usable]
    consumer_pins = pins["consumer"][usable] if pins else None
    relevant = np.stack([accepted[sets.consumer[n].label] for n in usable])
    plain = _ranking(consumer @ gallery.T, TOP)
    out["consumer_p10"] = float(_precision_at(plain, relevant, 10).mean())
    guesses, source = _system_guesses(name, consumer, gallery, sets.gallery)
    # The narrowing gate and the category term: chosen on the classifier's own validation photos.
    if settings is None:
        category_weight, category_gate, narrow_gate, selection = _category_weight_choose(
            name, sets, vectors, mapping, gates=category_gates or CATEGORY_GATES)
    else:
        category_weight, category_gate, selection = settings["category_weight"], settings["category_gate"], {"given": True}
        narrow_gate = settings.get("narrow_gate", NARROW_GATES[-1])
    narrowed_scores, narrowed = _narrowed(consumer @ gallery.T, guesses, _scope_masks(sets.gallery), narrow_gate)
    views_served = served_before_term(name, vectors["views"], gallery, sets.gallery, narrow_gate)
    views_ungated = served_before_term(name, vectors["views"], gallery, sets.gallery)

    def views_share(scores: np.ndarray) -> float:
        return _top1_hits(scores, views_correct) / len(views_correct) if views_correct else float("nan")

    prior = _category_prior(name, consumer, sets.gallery)
    system = _ranking(_pinned(_category_term(narrowed_scores, prior, category_weight, category_gate), consumer_pins), TOP)
    without = _ranking(_pinned(narrowed_scores, consumer_pins), TOP)
    labels = [sets.consumer[n].label for n in usable]
    top1_hit = np.array([label in mapping.article_types.get(lab, ()) for (label, *_), lab in zip(guesses, labels, strict=True)])
    out["system"] = {
        "category_source": source,
        "narrowed_share": narrowed / max(len(guesses), 1),
        "consumer_p10": float(_precision_at(system, relevant, 10).mean()),
        "top8_share": float(_precision_at(system, relevant, 8).mean()),
        "category_top1": float(top1_hit.mean()),
        "category_top1_per_label": {lab: float(top1_hit[np.array(labels) == lab].mean()) for lab in sorted(set(labels))},
        "category_weight": category_weight,
        "category_gate": category_gate,
        "narrow_gate": narrow_gate,
        # The views as served with every confident guess narrowing (no narrowing gate), the term as chosen.
        "views_r1_without_narrow_gate": views_share(_pinned(_category_term(*views_ungated, category_weight, category_gate), pins.get("views"))),
        "category_weight_selection": selection,
        "without_category_term": {
            "consumer_p10": float(_precision_at(without, relevant, 10).mean()),
            "top8_share": float(_precision_at(without, relevant, 8).mean()),
            "views_r1": views_share(_pinned(views_served[0], pins.get("views"))),
        },
        # The consumer-like views searched as serving searches them (a shopper photographing one product).
        "views_r1": views_share(_pinned(_category_term(*views_served, category_weight, category_gate), pins.get("views"))),
    }
    out["plain_top8_share"] = float(_precision_at(plain, relevant, 8).mean())

    # Telling consumer photos apart: each edit must find its own photo.
    photos, edits = vectors["consumer"], vectors["edits"]
    sims = edits @ photos.T
    own = np.diag(sims)
    out["consumer_instance_r1"] = float((sims.argmax(axis=1) == np.arange(len(own))).mean())
    others = sims[~np.eye(len(own), dtype=bool)]
    rng = np.random.default_rng(0)
    sample = rng.choice(others, size=min(len(others), 200_000), replace=False)
    out["consumer_instance_auc"] = float((own[:, None] > sample[None, : min(len(sample), 2000)]).mean())

    # Colour: choose the weight on the training side, report on the hold-out.
    def colour_share(q_vectors, g_vectors, q_items, g_items, q_prof, g_prof, weight, twins) -> tuple[float, float]:
        scores = q_vectors @ g_vectors.T + weight * _colour_matrix(q_prof, g_prof)
        ranking = _ranking(scores, TOP)
        g_colour = np.array([g.base_colour for g in g_items])
        share = float(np.mean([(g_colour[ranking[n]] == q.base_colour).mean() for n, q in enumerate(q_items)]))
        # A byte-identical twin listed under another id is the photo found (as for views R@1):
        # by id alone, which twin comes first flipped with the last bits of the vectors, and
        # the selection's R@1 with it (up to 0.01 between two runs of one model, 2026-12-07).
        own_rows = {g.id: r for r, g in enumerate(g_items)}
        r1 = float(np.mean([ranking[n, 0] in twins[own_rows[q.id]] for n, q in enumerate(q_items)]))
        return share, r1

    select_items = [item for item, _ in sets.select_views]
    trials = {w: colour_share(vectors["select_views"], vectors["select_gallery"], select_items, sets.select_gallery,
                              colour["select_views"], colour["select_gallery"], w, sets.select_twins) for w in COLOUR_WEIGHTS}
    base_r1 = trials[0.0][1]
    weight = max((w for w, (_, r1) in trials.items() if r1 >= base_r1 - COLOUR_MAX_R1_LOSS), key=lambda w: trials[w][0])
    if settings is not None:
        weight = settings["colour_weight"]
    view_items = [item for item, _ in sets.views]
    before = colour_share(vectors["views"], gallery, view_items, sets.gallery, colour["views"], colour["gallery"], 0.0, sets.twins)
    after = colour_share(vectors["views"], gallery, view_items, sets.gallery, colour["views"], colour["gallery"], weight, sets.twins)
    out["colour"] = {
        "weight": weight,
        "selection": {str(w): {"share": s, "views_r1": r} for w, (s, r) in trials.items()},
        "top10_share_before": before[0], "top10_share_after": after[0],
        "views_r1_before": before[1], "views_r1_after": after[1],
    }

    # Relevance floor: chosen on training-side consumer photos against the training-side gallery.
    sel_types = np.array([g.article_type for g in sets.select_gallery])
    sel_usable = [n for n, p in enumerate(sets.select_consumer) if p.label in accepted]
    sel_scores = vectors["select_consumer"][sel_usable] @ vectors["select_gallery"].T
    top_rows = sel_scores.argmax(axis=1)
    top_scores = sel_scores.max(axis=1)
    right = np.array([sel_types[r] in mapping.article_types[sets.select_consumer[n].label] for n, r in zip(sel_usable, top_rows, strict=True)])
    floor = _floor(top_scores, right) if settings is None else settings["relevance_floor"]
    held_top = (consumer @ gallery.T).max(axis=1)
    out["relevance_floor"] = {
        "floor": floor,
        "holdout_nothing_close_share": float((held_top < floor).mean()),
        "holdout_top1_right_above": float(_top1_right(consumer, gallery, relevant)[held_top >= floor].mean()) if (held_top >= floor).any() else None,
        "holdout_top1_right_below": float(_top1_right(consumer, gallery, relevant)[held_top < floor].mean()) if (held_top < floor).any() else None,
    }
    if pins:
        log(f"  {name}: same-photo pins: copies {out['same_photo']['copies']}, views {out['same_photo']['views']}, consumer photos "
            f"{out['same_photo']['consumer_photos']['pinned']} of {len(pins['consumer'])}; copies R@1 as served {out['copies_r1_served']:.3f}")
    log(f"  {name}: views R@1 {out['views_r1']:.3f}, copies R@1 {out['copies_r1']:.3f}, consumer P@10 {out['consumer_p10']:.3f} "
        f"-> {out['system']['consumer_p10']:.3f} with the system, top-8 share {out['system']['top8_share']:.3f}, "
        f"category top-1 {out['system']['category_top1']:.3f}, instance R@1 {out['consumer_instance_r1']:.3f}, "
        f"colour share {before[0]:.3f} -> {after[0]:.3f} (weight {weight}), floor {floor:.3f}; category term weight "
        f"{out['system']['category_weight']}, gate {out['system']['category_gate']}, narrowing gate {out['system']['narrow_gate']} "
        f"(views R@1 as served {out['system']['views_r1_without_narrow_gate']:.3f} without it) (without the term: P@10 "
        f"{out['system']['without_category_term']['consumer_p10']:.3f}, views R@1 as served "
        f"{out['system']['without_category_term']['views_r1']:.3f} -> {out['system']['views_r1']:.3f})")
    return out


def _top1_right(queries: np.ndarray, gallery: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    top = (queries @ gallery.T).argmax(axis=1)
    return relevant[np.arange(len(top)), top]


def _floor(scores: np.ndarray, right: np.ndarray, window: int = 50) -> float:
    """The lowest top-1 cosine above which the top-1 is right at least half of the time
    (over the ``window`` searches just above it)."""
    order = np.argsort(scores)
    s, r = scores[order], right[order].astype(float)
    for i in range(0, max(len(s) - window, 0)):
        if r[i : i + window].mean() >= 0.5:
            return float(s[i])
    return float(s[0]) if len(s) else 0.0


def matching_run(options: MatchingOptions, log: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    sets = sets_build(options, log)
    mapping = datasets.label_mapping_load()
    log("fingerprints (the same-photo pin) and colour profiles (studio thumbnails and garment regions)")
    prints = {
        "gallery": [fingerprint(Image.open(g.path)) for g in sets.gallery],
        "copies": _upload_prints([c.path for c in sets.copies]),
        "views": _upload_prints([p for _, p in sets.views]),
        "consumer": _upload_prints([p.path for p in sets.consumer]),
    }
    colour = {
        "gallery": [studio_profile(f.colour) for f in prints["gallery"]],
        "select_gallery": _profiles_studio(sets.select_gallery),
        "views": _profiles_photo([p for _, p in sets.views]),
        "select_views": _profiles_photo([p for _, p in sets.select_views]),
    }
    groups = {
        "gallery": [g.path for g in sets.gallery],
        "copies": [c.path for c in sets.copies],
        "views": [p for _, p in sets.views],
        "consumer": [p.path for p in sets.consumer],
        "edits": sets.edits,
        "select_gallery": [g.path for g in sets.select_gallery],
        "select_views": [p for _, p in sets.select_views],
        "select_consumer": [p.path for p in sets.select_consumer],
    }
    result: dict = {"command": options.command, "holdout_model": options.holdout_model, "machine": machine_info(), "models": {}}
    for name in options.models:
        vectors = _encode(name, groups, options.cache_dir, log)
        source = options.settings_from.get(name)
        if source is not None and source not in result["models"]:
            raise ValueError(f"{name} takes its search settings from {source}, which the run must score before it.")
        given = chosen_settings(result["models"][source]) if source is not None else None
        result["models"][name] = model_report(name, sets, vectors, colour, mapping, log, settings=given, prints=prints,
                                              category_gates=options.category_gates)
        if source is not None:
            log(f"  {name}: scored with the search settings chosen for {source}")
        if options.record:
            path = record_path(name, holdout_model=options.holdout_model)
            if path is not None:
                _record(name, path, result["models"][name], options, log)
            elif is_finetuned(name):
                log(f"  not recorded in {name}: a shipped model only compared here keeps its committed settings")
    result["seconds"] = round(time.perf_counter() - started, 1)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    json_write(options.out_dir / "matching.json", result)
    (options.out_dir / "matching.md").write_text(matching_markdown(result))
    return result


def record_path(name: str, *, holdout_model: str | None) -> Path | None:
    """The ``metadata.json`` that ``--record`` writes for ``name``: a fine-tuned model's from the
    models directory, or a shipped one's when it is the run's hold-out model; otherwise None."""
    folder = model_folder(name)
    if folder is None:
        return None
    shipped = folder.resolve().parent == embedding_config.SHIPPED_MODELS_DIR.resolve()
    return folder / FINETUNED_METADATA if not shipped or name == holdout_model else None


def _record(name: str, path: Path, report: dict, options: MatchingOptions, log) -> None:
    metadata = json.loads(path.read_text())
    chosen = chosen_settings(report)
    metadata["search"] = {
        **chosen,
        "relevance_floor": round(chosen["relevance_floor"], 4),
        "chosen_by": options.command or "lab.evaluation.matching",
    }
    if name in options.settings_from:
        metadata["search"]["chosen_for"] = options.settings_from[name]
    metadata.setdefault("metrics", {})[f"matching_{options.holdout_model}"] = {
        k: report[k] for k in ("copies_r1", "copies_r1_served", "same_photo", "views_r1", "consumer_p10", "plain_top8_share",
                               "system", "consumer_instance_r1", "consumer_instance_auc", "colour", "relevance_floor")
        if k in report
    }
    path.write_text(json.dumps(metadata, indent=2, default=str))
    log(f"  recorded the colour weight and floor of {name} in {path}")


def summary_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    header = ["model", "dim", "copies R@1 (as served)", "views R@1 (as served)", "consumer P@10", "P@10 with category", "top-8 same type",
              "category top-1", "photos told apart R@1 / AUC", "colour share top-10 before → after", "floor"]
    rows = []
    for name, m in result["models"].items():
        rows.append([
            name, str(m["dim"]), f"{m['copies_r1']:.3f} ({m.get('copies_r1_served', float('nan')):.3f})",
            f"{m['views_r1']:.3f} ({m['system']['views_r1']:.3f})", f"{m['consumer_p10']:.3f}",
            f"{m['system']['consumer_p10']:.3f}", f"{m['system']['top8_share']:.3f}", f"{m['system']['category_top1']:.3f}",
            f"{m['consumer_instance_r1']:.3f} / {m['consumer_instance_auc']:.3f}",
            f"{m['colour']['top10_share_before']:.3f} → {m['colour']['top10_share_after']:.3f} (w {m['colour']['weight']})",
            f"{m['relevance_floor']['floor']:.3f}",
        ])
    return header, rows


def matching_markdown(result: dict) -> str:
    header, rows = summary_rows(result)
    lines = [f"# Matching quality on the hold-out of {result['holdout_model']}", "", f"Command: `{result.get('command')}`", "",
             md_table(header, rows), ""]
    for name, m in result["models"].items():
        per_label = m["system"]["category_top1_per_label"]
        lines += [f"Category top-1 per label, {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in per_label.items()), ""]
    return "\n".join(lines)


def matching_text(result: dict) -> str:
    header, rows = summary_rows(result)
    return text_table(header, rows)
