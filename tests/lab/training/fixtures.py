"""A tiny generated catalogue and consumer-photo folder in the shared data's layout."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.visualsearch.embedding.helpers import isolate_embedding_env, picture
from visualsearch.embedding import reset_configuration

TYPES = ("Tshirts", "Shirts", "Jeans")


def make_catalog(root: Path, n: int = 18, size: int = 64) -> Path:
    """``n`` products of 3 articleTypes (images/<id>.jpg, labels.csv), two with a 2nd image (duplicates.csv)."""
    (root / "images").mkdir(parents=True)
    (root / "variants").mkdir()
    rows, dups = [], []
    for i in range(n):
        pid = str(10000 + i)
        picture(i, (size, size)).save(root / "images" / f"{pid}.jpg", quality=90)
        rows.append({"id": pid, "gender": "Men", "masterCategory": "Apparel", "subCategory": "Topwear",
                     "articleType": TYPES[i % len(TYPES)], "baseColour": "Blue", "season": "Summer", "year": "2012",
                     "usage": "Casual", "productDisplayName": f"Item {pid}", "image": f"images/{pid}.jpg",
                     "width": size, "height": size})
        if i < 2:
            picture(i, (size * 3 // 4, size)).save(root / "variants" / f"{pid}.jpg", quality=80)
            dups.append({"id": pid, "image_a": f"images/{pid}.jpg", "image_b": f"variants/{pid}.jpg",
                         "variant": "resized", "width_b": size * 3 // 4, "height_b": size})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "duplicates.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dups[0]))
        writer.writeheader()
        writer.writerows(dups)
    return root


def make_consumer(root: Path, n: int = 8, size: int = 64) -> Path:
    """``n`` consumer photos with labels of label_mapping_v1.json, each from its own contributor."""
    (root / "images").mkdir(parents=True)
    labels = ("T-Shirt", "Shirt", "Pants", "Polo")
    rows = []
    for i in range(n):
        name = f"photo-{i:03d}"
        picture(100 + i, (size, size * 4 // 3)).save(root / "images" / f"{name}.jpg", quality=85)
        rows.append({"image": name, "label": labels[i % len(labels)], "kids": "False", "sender_id": str(i),
                     "path": f"images/{name}.jpg", "width": size, "height": size * 4 // 3})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny_data")
    return make_catalog(root / "catalog"), make_consumer(root / "consumer")


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty models directory that ``load_embedder`` looks in (env var), config reset around the test."""
    isolate_embedding_env(monkeypatch)
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("VISUALSEARCH_MODELS_DIR", str(folder))
    monkeypatch.setenv("VISUALSEARCH_DEVICE", "cpu")
    reset_configuration()
    yield folder
    reset_configuration()
