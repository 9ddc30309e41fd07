"""``train_embedder`` end to end on a generated folder, then ``evaluate --holdout`` and ``embed_catalog --model``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import ProductImageFactory
from visualsearch.models import ImageEmbedding

from .fixtures import models_dir, tiny_data  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow]
NAME = "tiny-cmd-v1"


@pytest.fixture
def trained(tiny_data, models_dir, tmp_path):
    catalog, consumer = tiny_data
    out = io.StringIO()
    call_command(
        "train_embedder", "--name", NAME, "--catalog", str(catalog), "--consumer", str(consumer),
        "--models-dir", str(models_dir), "--cache-dir", str(tmp_path / "cache"), "--limit", "0", "--views", "1",
        "--epochs", "3", "--hidden", "0", "--batch-types", "3", "--per-type", "2", "--holdout-fraction", "0.3",
        "--device", "cpu", "--no-progress", stdout=out,
    )
    return models_dir / NAME, out.getvalue()


@pytest.mark.django_db  # evaluate compares with the active model, read from the registry
def test_train_then_evaluate_on_the_holdout(trained, tiny_data, tmp_path) -> None:
    trained, out = trained
    assert f"Model {NAME}: 256-d, 3 epochs" in out and "hold-out:" in out
    metadata = json.loads((trained / "metadata.json").read_text())
    assert metadata["holdout"]["product_fraction"] == 0.3 and metadata["metrics"] == {}
    assert (trained / "loss_curve.png").stat().st_size > 0

    catalog, consumer = tiny_data
    call_command(
        "evaluate", "--model", NAME, "--holdout", NAME, "--catalog", str(catalog), "--consumer", str(consumer),
        "--out", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "evalcache"), "--synthetic", "3",
        "--no-baseline", "--no-index", "--no-map", "--no-duplicates", stdout=io.StringIO(),
    )
    result = json.loads((tmp_path / "reports" / "evaluate_holdout.json").read_text())
    held = metadata["holdout"]["products"]
    assert result["holdout_model"] == NAME and result["sizes"]["gallery"] == held
    assert result["sizes"]["consumer"] == metadata["holdout"]["consumer_photos"]
    assert set(result["models"]) == {"efficientnet_lite0", NAME}
    assert result["models"][NAME]["dim"] == 256 and result["models"]["efficientnet_lite0"]["dim"] == 1280
    # The fine-tuned vectors came from the ImageNet ones through the head: nothing re-encoded.
    assert result["models"][NAME]["encoded_now"] == 0
    for entry in result["models"].values():
        assert 0.0 <= entry["exact"]["consumer_like"]["r1"] <= entry["exact"]["consumer_like"]["r10"] <= 1.0
        assert entry["exact_query_ms"]["p50"] > 0
    recorded = json.loads((trained / "metadata.json").read_text())["metrics"][f"holdout_{NAME}"]
    assert recorded["sizes"] == result["sizes"] and "efficientnet_lite0" in recorded["compared_with"]
    assert "Hold-out of" in (tmp_path / "reports" / "evaluate_holdout.md").read_text()

    # evaluate_matching chooses serving's settings on views of products the model's training
    # held back (its classifier knows the type of every product it trained on by heart); the
    # rest of the selection gallery is the training side's.
    from lab.evaluation.matching import MatchingOptions, sets_build, validation_product_of

    sets = sets_build(MatchingOptions(models=(NAME,), holdout_model=NAME, out_dir=tmp_path / "m", cache_dir=tmp_path / "mc",
                                      catalog_dir=catalog, consumer_dir=consumer), log=lambda _: None)
    held_back = validation_product_of(NAME)
    view_ids = {item.id for item, _ in sets.select_views}
    assert view_ids and all(held_back(i) for i in view_ids) and view_ids <= {g.id for g in sets.select_gallery}
    assert any(not held_back(g.id) for g in sets.select_gallery)
    assert not {g.id for g in sets.select_gallery} & {g.id for g in sets.gallery}
    assert validation_product_of("efficientnet_lite0") is None  # an ImageNet backbone records no split


@pytest.mark.django_db
def test_embed_catalog_indexes_the_finetuned_model_beside_the_current_one(trained) -> None:
    assert (trained[0] / "weights.pt").exists()
    for i in range(3):
        ProductImageFactory(colour=(60 * i, 120, 200))
    call_command("embed_catalog", "--no-progress", "--no-duplicates")
    call_command("embed_catalog", "--model", NAME, "--no-progress", "--no-duplicates")
    rows = ImageEmbedding.objects.filter(model_name=NAME)
    assert rows.count() == 3 and {r.dim for r in rows} == {256}
    assert ImageEmbedding.objects.filter(model_name="efficientnet_lite0", dim=1280).count() == 3
    vector = np.asarray(rows.first().vector.to_list(), dtype=np.float32)
    assert vector.shape == (256,) and abs(np.linalg.norm(vector) - 1) < 1e-2
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s", ["embedding_hnsw_%256%"])
        assert cursor.fetchall()


def test_train_embedder_refuses_a_backbone_name_and_an_existing_model(trained, tiny_data, models_dir) -> None:
    catalog, consumer = tiny_data
    with pytest.raises(CommandError, match="backbone"):
        call_command("train_embedder", "--name", "efficientnet_lite0", "--catalog", str(catalog), "--no-progress")
    with pytest.raises(CommandError, match="already exists"):
        call_command("train_embedder", "--name", NAME, "--catalog", str(catalog), "--consumer", str(consumer),
                     "--models-dir", str(models_dir), "--no-progress")


@pytest.mark.django_db
def test_ship_model_writes_a_half_precision_copy_with_its_card(trained, tiny_data, tmp_path, monkeypatch) -> None:
    from visualsearch.embedding import available_models, clear_cache, config, load_embedder

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    # The shipped default stays visible (other code loads it); the tiny model ships beside it.
    (shipped / config.DEFAULT_MODEL).symlink_to(config.SHIPPED_MODELS_DIR / config.DEFAULT_MODEL)
    monkeypatch.setattr(config, "SHIPPED_MODELS_DIR", shipped)
    catalog, consumer = tiny_data
    out = io.StringIO()
    call_command(
        "ship_model", "--model", NAME, "--catalog", str(catalog), "--consumer", str(consumer),
        "--out", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "evalcache"), "--mirror-average",
        "--query-crop", "0.8", stdout=out,
    )
    folder = shipped / NAME
    assert {p.name for p in folder.iterdir()} >= {"weights.pt", "metadata.json", "categories.npz", "MODEL_CARD.md"}
    assert all(p.stat().st_size < 2_000_000 for p in folder.iterdir())
    import torch

    state = torch.load(folder / "weights.pt", weights_only=True)
    # The matrices and kernels in float16, the 1-D tensors (norms' statistics, biases) float32.
    assert {v.dtype for v in state.values() if v.is_floating_point() and v.dim() > 1} == {torch.float16}
    assert {v.dtype for v in state.values() if v.is_floating_point() and v.dim() == 1} == {torch.float32}
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["shipped"]["weights_dtype"].startswith("float16")
    comparison = metadata["shipped"]["float16_vs_float32"]
    assert set(comparison["float16"]) == set(comparison["float32"]) and "views_r1" in comparison["float16"]
    # The copy is scored, and shipped, with the search settings chosen for its float32 original.
    original = json.loads((trained[0].parent / f"{NAME}-fp32" / "metadata.json").read_text())["search"]
    assert metadata["search"]["chosen_for"] == f"{NAME}-fp32"
    settings = ("colour_weight", "category_weight", "category_gate", "relevance_floor")
    assert {k: metadata["search"][k] for k in settings} == {k: original[k] for k in settings}
    # The float32 original stays loadable under its own name, and NAME now loads the shipped copy.
    assert (trained[0].parent / f"{NAME}-fp32" / "weights.pt").exists() and not trained[0].exists()
    clear_cache()
    assert {NAME, f"{NAME}-fp32"} <= set(available_models())
    half, full = load_embedder(NAME), load_embedder(f"{NAME}-fp32")
    image = next((catalog / "images").iterdir())
    from PIL import Image

    a, b = half.embed([Image.open(image)]), full.embed([Image.open(image)])
    assert float(a[0] @ b[0]) > 0.999
    # --mirror-average: both precisions were scored, and the copy serves, with mirror averaging.
    assert metadata["mirror_average"] is True and half.mirror_average and full.mirror_average
    mirrored = half.embed([Image.open(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert float(a[0] @ mirrored[0]) > 0.9999
    card = (folder / "MODEL_CARD.md").read_text()
    assert f"# Model card: {NAME}" in card and "consumer-like views R@1" in card and "make train" in card
    assert "mirror image" in card and "--mirror-average" in card
    # --query-crop: a shopper's photo is searched with its centre crop too; both precisions were scored that way.
    assert metadata["query_crop"] == 0.8 and half.query_crop == 0.8 and full.query_crop == 0.8
    assert "centre crop" in card and "--query-crop 0.8" in card
    assert (tmp_path / "reports" / "ship" / "matching.json").exists()


@pytest.mark.django_db
def test_ship_model_refuses_a_query_crop_outside_the_photo(tmp_path) -> None:
    with pytest.raises(CommandError, match="query crop"):
        call_command("ship_model", "--model", NAME, "--catalog", str(tmp_path), "--query-crop", "1.2")
