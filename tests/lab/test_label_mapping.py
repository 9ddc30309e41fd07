import csv
import json

from lab.datasets import CATALOG_DIR, CONSUMER_DIR
from lab.datasets import LABEL_MAPPING_PATH, label_mapping_load

# The 17 labels of clothing_dataset_cc0 (its SOURCE.md), so the check runs without the data too.
CONSUMER_LABELS = {
    "Blazer", "Blouse", "Body", "Dress", "Hat", "Hoodie", "Longsleeve", "Outwear", "Pants", "Polo", "Shirt",
    "Shoes", "Shorts", "Skirt", "T-Shirt", "Top", "Undershirt",
}


def test_mapping_is_versioned_and_covers_all_17_labels():
    mapping = label_mapping_load()
    assert mapping.version == 1
    assert "v1" in LABEL_MAPPING_PATH.name
    assert set(mapping.article_types) == CONSUMER_LABELS
    assert all(mapping.article_types.values())
    raw = json.loads(LABEL_MAPPING_PATH.read_text())
    assert all("note" in entry for entry in raw["labels"].values())


def test_mapping_matches_the_shared_data(shared_catalog, shared_consumer_photos):
    mapping = label_mapping_load()
    with open(CONSUMER_DIR / "labels.csv", newline="") as handle:
        assert {row["label"] for row in csv.DictReader(handle)} == set(mapping.article_types)
    with open(CATALOG_DIR / "labels.csv", newline="") as handle:
        catalogue_types = {row["articleType"] for row in csv.DictReader(handle)}
    unknown = {t for types in mapping.article_types.values() for t in types} - catalogue_types
    assert not unknown, f"article types not in the catalogue: {unknown}"
