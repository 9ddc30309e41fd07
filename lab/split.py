"""The hold-out split: which products (and consumer photos) training never sees. No torch.

A product is held out when a salted SHA-1 of its *group key* falls below ``product_fraction``.
The group key is the smallest product id among the catalogue photos that are (near-)copies
of each other (``catalog_duplicate_candidates.csv``, which includes the 123 byte-identical
listings): otherwise the same photo could be trained on under one id and tested under the
other. Consumer photos have no product identity; they are held out by contributor
(``sender_id``), so a held-out photo's bed, floor and camera were never seen in training.

The split is a pure function of (salt, fractions, ids): the checkpoint's metadata records the
parameters, and ``evaluate --holdout MODEL`` rebuilds exactly the same split from them.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SALT = "vitrine-holdout-v1"
DEFAULT_PRODUCT_FRACTION = 0.2
DEFAULT_CONSUMER_FRACTION = 0.5
CANDIDATES_FILE = "catalog_duplicate_candidates.csv"


def unit_hash(salt: str, key: str) -> float:
    """A stable number in [0, 1) for ``key`` (the same on every machine and run)."""
    digest = hashlib.sha1(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def validation_product(product_id: str, *, seed: int, fraction: float) -> bool:
    """Whether a training-side product is held back for validation: by the embedding's training
    (the per-epoch score) and its category classifier's, and by what the lab chooses for
    serving on views of it (a product trained on is one the classifier knows by heart)."""
    return unit_hash(f"{seed}:val", product_id) < fraction


def validation_contributor(photo, *, seed: int, fraction: float) -> bool:
    """Whether a training-side consumer photo's contributor is held back for validation: by
    the embedding's training (the per-epoch score) and its category classifier's (calibration,
    the narrowing threshold), and by what the lab chooses for serving on those photos."""
    return unit_hash(f"{seed}:val-consumer", f"sender:{photo.sender_id or photo.id}") < fraction


def duplicate_groups(ids: Iterable[str], pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{id: group key}: union-find over ``pairs``; the key is the group's smallest id."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                lo, hi = sorted((ra, rb), key=_id_order)
                parent[hi] = lo
    return {i: find(i) for i in parent}


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


def candidate_pairs(catalog_dir: Path) -> list[tuple[str, str]]:
    path = Path(catalog_dir) / CANDIDATES_FILE
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [(row["id_a"], row["id_b"]) for row in csv.DictReader(handle)]


@dataclass(frozen=True)
class HoldoutSplit:
    salt: str = DEFAULT_SALT
    product_fraction: float = DEFAULT_PRODUCT_FRACTION
    consumer_fraction: float = DEFAULT_CONSUMER_FRACTION

    def __post_init__(self) -> None:
        for name in ("product_fraction", "consumer_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")

    def product_holdout(self, ids: Sequence[str], catalog_dir: Path | None = None) -> set[str]:
        """The held-out ids among ``ids`` (copies of one photo go to the same side)."""
        groups = duplicate_groups(ids, candidate_pairs(catalog_dir) if catalog_dir else [])
        return {i for i in ids if unit_hash(self.salt + ":product", groups[i]) < self.product_fraction}

    def consumer_is_holdout(self, sender_id: str, photo_id: str) -> bool:
        # Without a contributor id, fall back to the photo itself.
        key = f"sender:{sender_id}" if sender_id else f"photo:{photo_id}"
        return unit_hash(self.salt + ":consumer", key) < self.consumer_fraction

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HoldoutSplit:
        return cls(**{k: data[k] for k in ("salt", "product_fraction", "consumer_fraction") if k in data})


def ids_digest(ids: Iterable[str]) -> str:
    """A short hash of a set of ids, recorded in the metadata to check a split is the same."""
    return hashlib.sha1("\n".join(sorted(ids, key=_id_order)).encode()).hexdigest()[:16]
