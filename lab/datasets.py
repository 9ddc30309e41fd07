"""The shared evaluation data (``../shared/data``), read as plain records; no Django.

* ``fashion_product_images``: the catalogue (``labels.csv``: one 224x224 photo per
  product id) and ``duplicates.csv`` (another repository's resized copy of the same
  photo, ``image_b``, for 1,057 ids).
* ``clothing_dataset_cc0``: 3,863 consumer photos of garments with one of 17 labels.
* ``label_mapping_v1.json`` (beside this file): consumer label -> catalogue articleTypes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# ../shared/data beside the repository, unless SHARED_DATA_DIR points elsewhere.
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
CATALOG_DIR = SHARED_DATA / "fashion_product_images"
CONSUMER_DIR = SHARED_DATA / "clothing_dataset_cc0"
LABEL_MAPPING_PATH = Path(__file__).resolve().parent / "label_mapping_v1.json"
# Pairs of catalogue ids looked at by eye and found to be one photograph, which the shared
# data's own scan (catalog_duplicate_candidates.csv) missed: never negatives either.
DUPLICATE_AUDIT_PATH = Path(__file__).resolve().parent / "duplicate_audit.csv"


@dataclass(frozen=True)
class CatalogItem:
    id: str
    path: Path
    article_type: str
    sub_category: str
    master_category: str
    gender: str
    base_colour: str = ""
    display_name: str = ""


@dataclass(frozen=True)
class CopyPair:
    id: str  # catalogue id of the original
    path: Path  # the copy (image_b)
    variant: str


@dataclass(frozen=True)
class ConsumerPhoto:
    id: str
    path: Path
    label: str
    kids: bool
    sender_id: str = ""  # contributor, not product: the hold-out split groups photos by it


@dataclass(frozen=True)
class LabelMapping:
    version: int
    article_types: dict[str, tuple[str, ...]]  # consumer label -> accepted catalogue articleTypes


def same_photo_pairs(
    catalog_dir: Path, candidates: list[dict[str, str]] | None = None,
) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """Pairs of catalogue ids that show one photograph and so are never negatives of the
    duplicate evaluations: (those listed in ``catalog_duplicate_candidates.csv``, those added
    by ``duplicate_audit.csv``). ``candidates``: that CSV's rows, where the caller read them already."""
    if candidates is None:
        candidates = csv_rows(catalog_dir / "catalog_duplicate_candidates.csv")
    listed = {frozenset((row["id_a"], row["id_b"])) for row in candidates}
    audited = {frozenset((row["id_a"], row["id_b"])) for row in csv_rows(DUPLICATE_AUDIT_PATH)} - listed
    return listed, audited


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Every row of one of the shared CSV files, as a dict per row (the one CSV reader)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def catalog_read(root: Path = CATALOG_DIR) -> list[CatalogItem]:
    return [
        CatalogItem(
            id=row["id"],
            path=root / row["image"],
            article_type=row["articleType"],
            sub_category=row["subCategory"],
            master_category=row["masterCategory"],
            gender=row["gender"],
            base_colour=row.get("baseColour", ""),
            display_name=row.get("productDisplayName", ""),
        )
        for row in csv_rows(root / "labels.csv")
    ]


def copies_read(root: Path = CATALOG_DIR) -> list[CopyPair]:
    return [CopyPair(id=row["id"], path=root / row["image_b"], variant=row["variant"]) for row in csv_rows(root / "duplicates.csv")]


def consumer_read(root: Path = CONSUMER_DIR) -> list[ConsumerPhoto]:
    return [
        ConsumerPhoto(id=row["image"], path=root / row["path"], label=row["label"], kids=row["kids"] == "True",
                      sender_id=row.get("sender_id", ""))
        for row in csv_rows(root / "labels.csv")
    ]


def label_mapping_load(path: Path = LABEL_MAPPING_PATH) -> LabelMapping:
    data = json.loads(path.read_text())
    return LabelMapping(
        version=int(data["version"]),
        article_types={label: tuple(entry["article_types"]) for label, entry in data["labels"].items()},
    )


def identical_files(paths: Sequence[Path]) -> list[set[int]]:
    """For each path, the positions of every path with byte-identical content (itself included).

    The catalogue lists some photos under two product ids (123 byte-identical pairs, see
    ``catalog_duplicate_candidates.csv``); a query that finds the twin has found the photo.
    """
    by_digest: dict[str, set[int]] = {}
    digests = [hashlib.sha1(Path(p).read_bytes()).hexdigest() for p in paths]
    for i, digest in enumerate(digests):
        by_digest.setdefault(digest, set()).add(i)
    return [by_digest[d] for d in digests]


def sample(items: Sequence, n: int | None, seed: int, stream: str) -> list:
    """A seeded sample of ``n`` items in their original order (all of them when ``n`` is None)."""
    if n is None or n >= len(items):
        return list(items)
    rng = random.Random(f"{seed}:{stream}")
    keep = set(rng.sample(range(len(items)), n))
    return [item for i, item in enumerate(items) if i in keep]


def stratified_sample(items: Sequence[ConsumerPhoto], per_label: int | None, seed: int) -> list[ConsumerPhoto]:
    """Up to ``per_label`` photos of each label (seeded), in the original order."""
    if per_label is None:
        return list(items)
    by_label: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_label.setdefault(item.label, []).append(i)
    rng = random.Random(f"{seed}:consumer")
    keep: set[int] = set()
    for label in sorted(by_label):
        rows = by_label[label]
        keep.update(rng.sample(rows, min(per_label, len(rows))))
    return [item for i, item in enumerate(items) if i in keep]
