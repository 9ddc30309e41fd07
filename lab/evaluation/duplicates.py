"""Precision and recall of the duplicate detector on labelled pairs from the shared catalogue.

No database: images are read from the Fashion Product Images folder and scored with the
same functions the workers use (``detection.fingerprint``, ``near_copy_score``) and the
active embedding model.

Labelled pairs (read ``../shared/data/fashion_product_images/SOURCE.md``):

* near-copy positives: ``duplicates.csv``, a catalogue photo (224x224, squashed from 3:4)
  against a copy of the same photo resized separately by another repository (225x300, or
  the tiny 60x80 Kaggle thumbnail);
* negatives, random: pairs of different products with the same article type and base
  colour, sampled with a seed;
* negatives, hardest: for each image of the pool, the other product of the same article
  type and colour whose image the CNN finds most similar; this is what the workers compare
  with (nearest neighbours), so it is the harder and more honest test;
* pairs listed in ``catalog_duplicate_candidates.csv`` are never negatives: that scan
  found them by pixel similarity and some are the same photo under two ids; nor are the
  pairs of ``lab/duplicate_audit.csv``, the same photo under two ids that the scan missed
  (one at another zoom), each looked at by eye; a pair that is both a random and a hardest
  negative counts once;
* exact copies: the 123 candidate pairs whose files are byte-identical are the positives
  for the sha256 rule, and every other pair (near copies included) is a negative;
* optionally (``synthetic``), edited copies made here from the 225x300 photos: JPEG
  quality 40, half size, a 4% crop inside the white margin, +12% brightness, -15%
  contrast, 8% white padding, and two edits the detector is not meant to catch at this
  precision (an 8% crop into the picture, a mirror image), reported for transparency.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from lab.datasets import csv_rows, same_photo_pairs
from lab.synthetic import jpeg_roundtrip
from visualsearch.duplicates.detection import (
    DEFAULT_THRESHOLDS,
    HASH_BITS,
    HASH_SCALE,
    HASH_WEIGHT,
    Fingerprint,
    Thresholds,
    colour_distance,
    fingerprint,
    hash_distance,
    near_copy_score,
    pr_curve,
    precision_recall,
)
from visualsearch.duplicates.verification import DEFAULT_VERIFY_THRESHOLDS, image_features, verified_score, verify
from visualsearch.embedding import load_embedder

# imagededup's published figures for its CNN detector (MobileNet) at threshold 0.9 on
# transformed near-duplicates, for comparison in reports.
IMAGEDEDUP_CNN_09 = {"precision": 0.999, "recall": 0.384}


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    width, height = image.size
    dx, dy = int(width * fraction), int(height * fraction)
    return image.crop((dx, dy, width - dx, height - dy))


# Edits a re-lister applies to someone else's photo. Name -> (function, meant to be caught).
SYNTHETIC_EDITS: dict[str, tuple[Callable[[Image.Image], Image.Image], bool]] = {
    "jpeg_q40": (lambda im: jpeg_roundtrip(im.convert("RGB"), 40), True),
    "half_size": (lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR), True),
    "crop_4pct": (lambda im: _crop(im, 0.04), True),
    "brightness_+12pct": (lambda im: ImageEnhance.Brightness(im).enhance(1.12), True),
    "contrast_-15pct": (lambda im: ImageEnhance.Contrast(im).enhance(0.85), True),
    "pad_8pct_white": (lambda im: ImageOps.expand(im, border=int(im.width * 0.08), fill="white"), True),
    "crop_8pct": (lambda im: _crop(im, 0.08), False),
    "mirror": (ImageOps.mirror, False),
}


@dataclass
class EvalConfig:
    data_dir: Path
    limit: int | None = None  # positives used (None: all 1,076)
    pool_extra: int | None = None  # extra catalogue images for negatives (default: as many as positives)
    negatives: int = 3000
    synthetic: int = 0  # photos given each synthetic edit
    seed: int = 7
    verify: bool = False  # run the verification stage on pairs the hash rule does not flag
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class PairSet:
    name: str
    cosine: np.ndarray
    distance: np.ndarray
    colour: np.ndarray = field(default_factory=lambda: np.zeros(0))
    labels: list[str] = field(default_factory=list)  # per pair, e.g. the variant
    pairs: list[tuple[str, str]] = field(default_factory=list)  # the two images of each pair
    # Per pair: the verification stage's score where it ran and passed (``--verify``), else 0.
    verified: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def score(self) -> np.ndarray:
        """The detector's score, 0 where the colour check vetoes the pair; a pair the
        verification stage passed scores at least its ``verified_score``."""
        colour = self.colour if len(self.colour) == len(self.cosine) else np.zeros(len(self.cosine))
        verified = self.verified if len(self.verified) == len(self.cosine) else np.zeros(len(self.cosine))
        return np.array(
            [
                max(
                    v,
                    near_copy_score(cosine=float(c), hash_distance=int(d))
                    if DEFAULT_THRESHOLDS.colour_ok(hash_distance=int(d), colour_distance=float(k))
                    else 0.0,
                )
                for c, d, k, v in zip(self.cosine, self.distance, colour, verified)
            ]
        )

    def __len__(self) -> int:
        return len(self.cosine)


@dataclass
class EvalResult:
    config: dict
    positives: PairSet
    negatives_random: PairSet
    negatives_hard: PairSet
    synthetic: dict[str, PairSet]
    exact: dict
    seconds: float
    images_embedded: int
    model_name: str

    @property
    def negatives(self) -> PairSet:
        return PairSet(
            name="negatives",
            cosine=np.concatenate([self.negatives_random.cosine, self.negatives_hard.cosine]),
            distance=np.concatenate([self.negatives_random.distance, self.negatives_hard.distance]),
            colour=np.concatenate([self.negatives_random.colour, self.negatives_hard.colour]),
            verified=np.concatenate(
                [n.verified if len(n.verified) == len(n) else np.zeros(len(n)) for n in (self.negatives_random, self.negatives_hard)]
            ),
        )

    def summary(self, threshold: float) -> dict:
        pos, neg = self.positives.score, self.negatives.score
        precision, recall = precision_recall(pos, neg, threshold)
        out = {
            "model": self.model_name,
            "threshold": threshold,
            "near": {
                "positives": len(self.positives),
                "negatives_random": len(self.negatives_random),
                "negatives_hard": len(self.negatives_hard),
                "precision": precision,
                "recall": recall,
                "false_positives": int(np.sum(neg >= threshold)),
                "false_positive_pairs": [
                    {"images": list(pair), "cosine": round(float(c), 4), "hash_distance": int(d)}
                    for negatives in (self.negatives_random, self.negatives_hard)
                    for pair, c, d, s in zip(negatives.pairs, negatives.cosine, negatives.distance, negatives.score)
                    if s >= threshold
                ],
                "false_negatives": int(np.sum(pos < threshold)),
                "precision_vs_random_only": precision_recall(pos, self.negatives_random.score, threshold)[0],
                "precision_vs_hard_only": precision_recall(pos, self.negatives_hard.score, threshold)[0],
                "recall_by_variant": {
                    variant: float(np.mean(pos[[i for i, v in enumerate(self.positives.labels) if v == variant]] >= threshold))
                    for variant in sorted(set(self.positives.labels))
                },
                "single_signal": self._single_signal(),
                "colour_distance_positives_max": float(self.positives.colour.max()) if len(self.positives) else None,
            },
            "exact": self.exact,
            "synthetic_recall": {
                name: {"recall": float(np.mean(pairs.score >= threshold)), "pairs": len(pairs), "in_scope": SYNTHETIC_EDITS[name][1]}
                for name, pairs in self.synthetic.items()
            },
            "imagededup_cnn_0.9": IMAGEDEDUP_CNN_09,
            "seconds": round(self.seconds, 1),
            "images_embedded": self.images_embedded,
            "config": self.config,
        }
        return out

    def _single_signal(self) -> dict:
        """Best recall each signal reaches alone at precision >= 0.99, for comparison."""
        out = {}
        for name, pos, neg in (
            ("cosine_only", self.positives.cosine, self.negatives.cosine),
            ("hash_only", 1.0 - self.positives.distance / HASH_BITS, 1.0 - self.negatives.distance / HASH_BITS),
            ("combined", self.positives.score, self.negatives.score),
        ):
            thresholds, precision, recall = pr_curve(np.asarray(pos, float), np.asarray(neg, float))
            ok = precision >= 0.99
            out[name] = {
                "recall_at_precision_0.99": float(recall[ok].max()) if ok.any() else 0.0,
                "threshold": float(thresholds[ok][np.argmax(recall[ok])]) if ok.any() else None,
            }
        return out


def _load_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


class _Featuriser:
    """Embeds and fingerprints images (files or in-memory edits), decoding on a second thread."""
    def __init__(self, *, batch_size: int = 8, on_progress: Callable[[int], None] | None = None) -> None:

        self.embedder = load_embedder()
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.count = 0

    def run(self, items: Sequence[tuple[str, Callable[[], Image.Image]]]) -> dict[str, tuple[np.ndarray, Fingerprint]]:
        import torch

        def load(chunk):
            tensors, prints = [], []
            for _, opener in chunk:
                image = opener()
                tensors.append(self.embedder.preprocess(image))
                prints.append(fingerprint(image))
            return torch.stack(tensors) if tensors else None, prints

        out: dict[str, tuple[np.ndarray, Fingerprint]] = {}
        chunks = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        with ThreadPoolExecutor(max_workers=1) as loader:
            pending = loader.submit(load, chunks[0]) if chunks else None
            for index, chunk in enumerate(chunks):
                tensor, prints = pending.result()
                if index + 1 < len(chunks):
                    pending = loader.submit(load, chunks[index + 1])
                vectors = self.embedder.embed_tensors(tensor)
                for (key, _), vector, print_ in zip(chunk, vectors, prints, strict=True):
                    out[key] = (vector, print_)
                self.count += len(chunk)
                if self.on_progress:
                    self.on_progress(len(chunk))
        return out


def plan(config: EvalConfig) -> dict:
    """Which images and pairs the evaluation uses (cheap; no image is decoded)."""
    data = config.data_dir
    rng = random.Random(config.seed)
    labels = {row["id"]: row for row in csv_rows(data / "labels.csv")}
    duplicates = csv_rows(data / "duplicates.csv")
    candidates = csv_rows(data / "catalog_duplicate_candidates.csv")
    listed, audited = same_photo_pairs(data, candidates)
    listed = listed | audited
    positives = sorted(duplicates, key=lambda row: (row["id"], row["variant"]))
    if config.limit is not None and config.limit < len(positives):
        positives = sorted(rng.sample(positives, config.limit), key=lambda row: (row["id"], row["variant"]))
    pool = sorted({row["id"] for row in positives})
    extra = config.pool_extra if config.pool_extra is not None else len(positives)
    others = sorted(set(labels) - set(pool))
    pool = sorted(set(pool) | set(rng.sample(others, min(extra, len(others)))))
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for product_id in pool:
        groups[(labels[product_id]["articleType"], labels[product_id]["baseColour"])].append(product_id)
    eligible = [members for members in groups.values() if len(members) >= 2]
    weights = [len(m) * (len(m) - 1) / 2 for m in eligible]
    total_pairs = int(sum(weights))
    negatives: set[frozenset[str]] = set()
    while eligible and len(negatives) < min(config.negatives, total_pairs - len(listed)):
        members = rng.choices(eligible, weights)[0]
        pair = frozenset(rng.sample(members, 2))
        if pair not in listed:
            negatives.add(pair)
    synthetic_sources = []
    if config.synthetic:
        resized = [row for row in duplicates if row["variant"] == "resized_225x300"]
        synthetic_sources = rng.sample(resized, min(config.synthetic, len(resized)))
    return {
        "labels": labels,
        "positives": positives,
        "pool": pool,
        "groups": groups,
        "listed": listed,
        "audited": audited,
        "negatives": sorted(tuple(sorted(pair)) for pair in negatives),
        "candidates": candidates,
        "synthetic_sources": synthetic_sources,
    }


def hardest_pairs(
    groups: dict[tuple[str, str], list[str]],
    vector: Callable[[str], np.ndarray],
    *,
    listed: set[frozenset[str]],
    drawn: Iterable[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The hardest negatives: for each product of a group (one article type and colour), the
    other product whose vector is most similar, never a pair of ``listed`` (the same photo);
    each pair once, and none already ``drawn`` as a random negative (one pair counts once)."""
    hard: set[tuple[str, str]] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        vectors = np.stack([vector(m) for m in members])
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        for i, j in itertools.product(range(len(members)), range(len(members))):
            if frozenset((members[i], members[j])) in listed:
                similarity[i, j] = -np.inf
        for i, row in enumerate(similarity):
            j = int(np.argmax(row))
            if np.isfinite(row[j]):
                hard.add(tuple(sorted((members[i], members[j]))))
    return sorted(hard - {tuple(sorted(pair)) for pair in drawn})


def _exact_copies(data: Path, candidates: Sequence[dict], positives: Sequence[dict], negatives: Iterable[tuple[str, str]], labels) -> dict:
    """The sha256 rule on byte-identical listings (positives) and every other labelled pair."""
    def digest(relative: str) -> str:
        return hashlib.sha256((data / relative).read_bytes()).hexdigest()

    cache: dict[str, str] = {}

    def sha(relative: str) -> str:
        if relative not in cache:
            cache[relative] = digest(relative)
        return cache[relative]

    exact_pos = [
        (labels[row["id_a"]]["image"], labels[row["id_b"]]["image"])
        for row in candidates
        if row["bytes_identical"] == "1" and row["id_a"] in labels and row["id_b"] in labels
    ]
    exact_neg = [(row["image_a"], row["image_b"]) for row in positives] + [
        (labels[a]["image"], labels[b]["image"]) for a, b in negatives
    ] + [
        (labels[row["id_a"]]["image"], labels[row["id_b"]]["image"])
        for row in candidates
        if row["bytes_identical"] != "1" and row["id_a"] in labels and row["id_b"] in labels
    ]
    tp = sum(sha(a) == sha(b) for a, b in exact_pos)
    fp = sum(sha(a) == sha(b) for a, b in exact_neg)
    return {
        "positives": len(exact_pos),
        "negatives": len(exact_neg),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / len(exact_pos) if exact_pos else 0.0,
    }


def evaluate(config: EvalConfig, *, on_plan: Callable[[int], None] | None = None, on_progress: Callable[[int], None] | None = None) -> EvalResult:
    started = time.perf_counter()
    data = config.data_dir
    p = plan(config)
    labels = p["labels"]
    items: list[tuple[str, Callable[[], Image.Image]]] = []
    seen: set[str] = set()

    def add_file(relative: str) -> None:
        if relative not in seen:
            seen.add(relative)
            items.append((relative, lambda r=relative: _load_image(data / r)))

    for product_id in p["pool"]:
        add_file(labels[product_id]["image"])
    for row in p["positives"]:
        add_file(row["image_a"])
        add_file(row["image_b"])
    for row in p["synthetic_sources"]:
        add_file(row["image_b"])
        for name, (edit, _) in SYNTHETIC_EDITS.items():
            key = f"{row['image_b']}#{name}"
            items.append((key, lambda r=row["image_b"], f=edit: f(_load_image(data / r))))
    if on_plan:
        on_plan(len(items))
    features = _Featuriser(on_progress=on_progress).run(items)

    def pair(a: str, b: str) -> tuple[float, int, float]:
        (va, fa), (vb, fb) = features[a], features[b]
        return float(va @ vb), hash_distance(fa, fb), colour_distance(fa, fb)

    def pairset(name: str, pairs: Sequence[tuple[str, str]], tags: Sequence[str] = ()) -> PairSet:
        values = [pair(a, b) for a, b in pairs]
        return PairSet(
            name=name,
            cosine=np.array([v[0] for v in values], dtype=np.float64),
            distance=np.array([v[1] for v in values], dtype=np.int64),
            colour=np.array([v[2] for v in values], dtype=np.float64),
            labels=list(tags),
            pairs=list(pairs),
        )

    positives = pairset(
        "positives", [(row["image_a"], row["image_b"]) for row in p["positives"]], [row["variant"] for row in p["positives"]]
    )
    negatives_random = pairset("negatives_random", [(labels[a]["image"], labels[b]["image"]) for a, b in p["negatives"]])
    hard = hardest_pairs(p["groups"], lambda m: features[labels[m]["image"]][0], listed=p["listed"], drawn=p["negatives"])
    negatives_hard = pairset("negatives_hard", [(labels[a]["image"], labels[b]["image"]) for a, b in hard])
    synthetic = {
        name: pairset(name, [(row["image_b"], f"{row['image_b']}#{name}") for row in p["synthetic_sources"]])
        for name in SYNTHETIC_EDITS
        if p["synthetic_sources"]
    }
    exact = _exact_copies(data, p["candidates"], p["positives"], p["negatives"], labels)
    if config.verify:
        openers = dict(items)
        for pairs in (positives, negatives_random, negatives_hard, *synthetic.values()):
            _verify_pairset(pairs, openers)

    return EvalResult(
        config={
            "limit": config.limit,
            "pool": len(p["pool"]),
            "negatives_requested": config.negatives,
            "synthetic": config.synthetic,
            "seed": config.seed,
            "verify": config.verify,
            # Same-photo pairs that lab/duplicate_audit.csv keeps out of the negatives.
            "audited_pairs": sorted(sorted(pair) for pair in p["audited"]),
        },
        positives=positives,
        negatives_random=negatives_random,
        negatives_hard=negatives_hard,
        synthetic=synthetic,
        exact=exact,
        seconds=time.perf_counter() - started,
        images_embedded=len(items),
        model_name=load_embedder().name,
    )


def _verify_pairset(pairs: PairSet, openers: dict[str, Callable[[], Image.Image]]) -> None:
    """The verification stage, as the workers run it, on the pairs the hash rule does not flag."""
    cache: dict[tuple[str, bool], object] = {}

    def local(key: str, mirrored: bool):
        if (key, mirrored) not in cache:
            cache[(key, mirrored)] = image_features(openers[key](), mirrored=mirrored)
        return cache[(key, mirrored)]

    out = np.zeros(len(pairs))
    for index, ((a, b), c, d, k) in enumerate(zip(pairs.pairs, pairs.cosine, pairs.distance, pairs.colour)):
        if DEFAULT_THRESHOLDS.is_near_copy(cosine=float(c), hash_distance=int(d), colour_distance=float(k)):
            continue
        if c < DEFAULT_VERIFY_THRESHOLDS.min_cosine:
            continue
        result = verify(local(b, True), local(a, False))
        if DEFAULT_VERIFY_THRESHOLDS.passes(result, cosine=float(c)):
            out[index] = verified_score(result)
    pairs.verified = out


def plot(result: EvalResult, *, threshold: float, path: Path) -> None:
    """Precision-recall curves (combined score, cosine alone, hash alone) and the decision plane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.4), dpi=110)
    negatives = result.negatives
    curves = (
        ("combined score (used)", result.positives.score, negatives.score, "#b3261e"),
        ("CNN cosine alone", result.positives.cosine, negatives.cosine, "#1a73e8"),
        ("pHash-256 alone", 1 - result.positives.distance / HASH_BITS, 1 - negatives.distance / HASH_BITS, "#2f6f4e"),
    )
    for label, pos, neg, colour in curves:
        _, precision, recall = pr_curve(np.asarray(pos, float), np.asarray(neg, float))
        left.plot(recall, precision, label=label, color=colour, lw=2)
    precision, recall = precision_recall(result.positives.score, negatives.score, threshold)
    left.scatter([recall], [precision], color="#141414", zorder=5, label=f"threshold {threshold}: P {precision:.3f} R {recall:.3f}")
    left.scatter([IMAGEDEDUP_CNN_09["recall"]], [IMAGEDEDUP_CNN_09["precision"]], marker="x", color="#6b6b6b", zorder=5, label="imagededup CNN @0.9 (published)")
    left.set_xlim(0, 1.01)
    left.set_ylim(0.5, 1.005)
    left.set_xlabel("recall (near copies, duplicates.csv)")
    left.set_ylabel("precision")
    left.set_title(f"Near copies: {len(result.positives)} positives, {len(negatives)} negatives")
    left.grid(alpha=0.3)
    left.legend(loc="lower left", fontsize=8)

    for pairs, colour, marker, label in (
        (result.negatives_random, "#9e9e9e", ".", "different products, random"),
        (result.negatives_hard, "#1a73e8", ".", "different products, nearest"),
        (result.positives, "#b3261e", "o", "copies (duplicates.csv)"),
    ):
        right.scatter(pairs.distance, pairs.cosine, s=8 if marker == "." else 10, c=colour, marker=marker, alpha=0.45, label=label)
    for name, pairs in result.synthetic.items():
        right.scatter(pairs.distance, pairs.cosine, s=10, marker="^", alpha=0.5, label=f"synthetic: {name}")
    # The boundary: HASH_WEIGHT * (1 - d / HASH_SCALE) + (1 - HASH_WEIGHT) * cos = threshold.
    cos = np.linspace(0, 1, 100)
    d = HASH_SCALE * (1 - (threshold - (1 - HASH_WEIGHT) * cos) / HASH_WEIGHT)
    right.plot(d, cos, color="#141414", lw=1.5, label="decision boundary")
    right.fill_betweenx(cos, 0, d, color="#b3261e", alpha=0.06)
    right.set_xlim(0, 130)
    right.set_ylim(0.2, 1.0)
    right.set_xlabel("pHash-256 Hamming distance (bits)")
    right.set_ylabel("CNN cosine similarity")
    right.set_title("Flagged: left of the line")
    right.grid(alpha=0.3)
    right.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
