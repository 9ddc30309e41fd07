"""Training on a tiny generated catalogue: batches, determinism, resume, publish and load back."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from visualsearch.embedding import available_models, load_embedder
from lab.split import HoldoutSplit
from lab.training.categories import category_head_train
from lab.training.trainer import TrainConfig, TrainingError, pk_batches, train, training_data

from .fixtures import models_dir, tiny_data  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def test_pk_batches_cover_every_row_once_grouped_by_type() -> None:
    types = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    rows = np.arange(10)
    batches = pk_batches(rows, types, batch_types=2, per_type=2, rng=np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == rows.tolist()
    assert all(len(b) <= 4 for b in batches)
    again = pk_batches(rows, types, batch_types=2, per_type=2, rng=np.random.default_rng(0))
    assert [b.tolist() for b in batches] == [b.tolist() for b in again]
    # Within a batch, consecutive pairs share a type (one group = one articleType), leftovers aside.
    same = [types[b[i]] == types[b[i + 1]] for b in batches for i in range(0, len(b) - 1, 2)]
    assert sum(same) >= len(same) - 1


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train_cache")


def tiny_config(tiny, cache: Path, models: Path, **overrides) -> TrainConfig:
    catalog, consumer = tiny
    base = TrainConfig(
        name="tiny-triplet-v1", dim=256, hidden=0, dropout=0.0, limit=None, views=1, epochs=4, batch_types=3, per_type=2,
        consumer_batch=4, consumer_candidates=8, val_fraction=0.2, seed=3,
        split=HoldoutSplit(product_fraction=0.25, consumer_fraction=0.5), catalog_dir=catalog, consumer_dir=consumer,
        models_dir=models, cache_dir=cache, device="cpu",
    )
    return replace(base, **overrides)


def weights(models: Path, name: str) -> dict[str, torch.Tensor]:
    return torch.load(models / name / "weights.pt", weights_only=True)


def test_training_data_never_uses_the_holdout(tiny_data, feature_cache, models_dir) -> None:
    config = tiny_config(tiny_data, feature_cache, models_dir)
    td = training_data(config)
    assert td.holdout_ids and not td.holdout_ids & set(td.product_ids)
    assert len(td.product_ids) + len(td.holdout_ids) == 18
    # Per product: its synthetic views, its real second images and one thumbnail.
    assert len(td.query_views) == len(td.product_ids) * (config.views + 1) + int(td.query_is_real.sum())
    assert (td.query_kind == "thumbnail").sum() == len(td.product_ids)
    # Consumer photos of held-out contributors are not trained on, nor are edits of them.
    assert 0 < len(td.consumer_views) < 8 and td.holdout_consumer == 8 - len(td.consumer_views)
    assert len(td.instance_views) == config.instance_views * len(td.consumer_views)
    assert {v.path for v in td.instance_views} == {v.path for v in td.consumer_views}


def test_train_publishes_a_model_that_load_embedder_reads(tiny_data, feature_cache, models_dir) -> None:
    config = tiny_config(tiny_data, feature_cache, models_dir)
    metadata = train(config, log=lambda _: None, progress=False)
    folder = models_dir / config.name
    assert {p.name for p in folder.iterdir()} == {"metadata.json", "weights.pt", "loss_curve.png"}
    saved = json.loads((folder / "metadata.json").read_text())
    assert saved["dim"] == 256 and saved["backbone"] == "efficientnet_lite0" and saved["seed"] == 3
    assert saved["epochs"] == 4 and len(saved["history"]) == 4 and saved["data"]["data_hash"]
    assert saved["holdout"]["product_fraction"] == 0.25 and saved["holdout"]["products"] == len(training_data(config).holdout_ids)
    assert all(np.isfinite(h["loss"]) for h in saved["history"])
    assert metadata["name"] == config.name

    assert config.name in available_models()
    embedder = load_embedder(config.name)
    assert (embedder.name, embedder.dim, embedder.device) == (config.name, 256, "cpu")
    images = [__import__("PIL.Image", fromlist=["Image"]).open(p) for p in sorted((tiny_data[0] / "images").glob("*.jpg"))[:3]]
    vectors = embedder.embed(images)
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Frozen backbone: the fine-tuned vectors follow from the ImageNet vectors through the head.
    base = load_embedder("efficientnet_lite0").embed(images)
    np.testing.assert_allclose(embedder.project_base_vectors(base), vectors, atol=1e-4)

    with pytest.raises(TrainingError, match="already exists"):
        train(config, log=lambda _: None, progress=False)


def test_training_is_seeded_and_resumable(tiny_data, feature_cache, models_dir) -> None:
    config = tiny_config(tiny_data, feature_cache, models_dir, name="tiny-a", hidden=32, dropout=0.1)
    train(config, log=lambda _: None, progress=False)
    train(replace(config, name="tiny-b"), log=lambda _: None, progress=False)
    a, b = weights(models_dir, "tiny-a"), weights(models_dir, "tiny-b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # Interrupted after epoch 2, then resumed: the same weights as the uninterrupted run.
    interrupted = replace(config, name="tiny-c")
    partial = train(interrupted, log=lambda _: None, progress=False, stop_after_epoch=2)
    assert partial["stopped_after_epoch"] == 2
    assert (models_dir / "tiny-c" / "train_state.pt").exists() and not (models_dir / "tiny-c" / "metadata.json").exists()
    with pytest.raises(TrainingError, match="unfinished run"):
        train(interrupted, log=lambda _: None, progress=False)
    with pytest.raises(TrainingError, match="other settings"):
        train(replace(interrupted, resume=True, margin=0.3), log=lambda _: None, progress=False)
    resumed = train(replace(interrupted, resume=True), log=lambda _: None, progress=False)
    c = weights(models_dir, "tiny-c")
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert [h["loss"] for h in resumed["history"]] == pytest.approx(
        [h["loss"] for h in json.loads((models_dir / "tiny-a" / "metadata.json").read_text())["history"]])
    assert not (models_dir / "tiny-c" / "train_state.pt").exists()


def test_training_the_last_stage_changes_it_and_loads_back(tiny_data, feature_cache, models_dir) -> None:
    config = tiny_config(tiny_data, feature_cache, models_dir, name="tiny-tail", train_last_stage=True, epochs=2, lr=1e-2)
    train(config, log=lambda _: None, progress=False)
    saved = weights(models_dir, "tiny-tail")
    assert any(k.startswith("tail.conv_head") for k in saved)
    embedder = load_embedder("tiny-tail")
    trained = embedder._model.tail.conv_head.weight
    imagenet = load_embedder("efficientnet_lite0")._model.net._conv_head.weight
    assert not torch.allclose(trained, imagenet)
    assert embedder.project_base_vectors(np.zeros((1, 1280), np.float32)) is None


def test_a_category_head_trained_in_process_is_read_by_the_next_load(tiny_data, feature_cache, models_dir) -> None:
    config = tiny_config(tiny_data, feature_cache, models_dir, name="tiny-head", epochs=1)
    train(config, log=lambda _: None, progress=False)
    assert load_embedder("tiny-head").category_head is None  # cached before the head exists
    category_head_train("tiny-head", config, log=lambda _: None)
    # compare_backbones scores the model in the same process right after training its head.
    assert load_embedder("tiny-head").category_head is not None


def test_training_the_last_block_too_serves_what_it_trained(tiny_data, feature_cache, models_dir) -> None:
    """``tail_blocks`` 1: the cache holds the maps before the last MBConv block, the block
    trains, and the published model embeds a photo as training saw it (cache -> tail -> head)."""
    from PIL import Image

    from lab.training import features as feats
    from lab.training.categories import model_vectors

    with pytest.raises(TrainingError, match="train_last_stage"):
        tiny_config(tiny_data, feature_cache, models_dir, tail_blocks=1).check()
    with pytest.raises(TrainingError, match="precision"):
        tiny_config(tiny_data, feature_cache, models_dir, precision="float16").check()
    # bfloat16 autocast, as the shipped recipe trains; what it publishes is float32 and serves as such.
    config = tiny_config(tiny_data, feature_cache, models_dir, name="tiny-block", train_last_stage=True, tail_blocks=1,
                         precision="bfloat16", epochs=2, lr=1e-2)
    metadata = train(config, log=lambda _: None, progress=False)
    assert metadata["tail_blocks"] == 1 and metadata["recipe"]["tail_blocks"] == 1
    assert metadata["recipe"]["precision"] == "bfloat16" and all(np.isfinite(h["loss"]) for h in metadata["history"])
    assert {v.dtype for v in weights(models_dir, "tiny-block").values() if v.is_floating_point()} == {torch.float32}
    # The defaults leave the recipe as earlier runs wrote it (their resumable state still matches).
    assert not {"tail_blocks", "precision"} & set(tiny_config(tiny_data, feature_cache, models_dir).recipe())
    saved = weights(models_dir, "tiny-block")
    assert any(k.startswith("tail.blocks.0.") for k in saved) and any(k.startswith("tail.conv_head") for k in saved)
    embedder = load_embedder("tiny-block")
    trained = embedder._model.tail.blocks[0]._project_conv.weight
    imagenet = load_embedder("efficientnet_lite0")._model.net._blocks[15]._project_conv.weight
    assert not torch.allclose(trained, imagenet)

    encoder = feats.TrunkEncoder("efficientnet_lite0", tail_blocks=1)
    assert encoder.shape == (192, 7, 7) and encoder.backend == "torch"  # the suite's embedding setting
    images = [Image.open(p) for p in sorted((tiny_data[0] / "images").glob("*.jpg"))[:3]]
    from_cache = model_vectors("tiny-block", encoder, encoder.encode(images).astype(np.float16))
    np.testing.assert_allclose(from_cache, embedder.embed(images), atol=2e-3)

    # train_category_head's config is the recorded recipe (tail_blocks included: the classifier
    # reads the maps this model's tail takes), run from the caller's folders.
    again = TrainConfig.from_recipe("tiny-block", metadata["recipe"], catalog_dir=config.catalog_dir, consumer_dir=config.consumer_dir,
                                    models_dir=models_dir, cache_dir=config.cache_dir, device="cpu")
    assert again == config
    head = category_head_train("tiny-block", again, log=lambda _: None)
    assert load_embedder("tiny-block").category_head.labels == head.labels


def test_the_trunk_runs_in_onnx_runtime_with_torch_s_maps(tiny_data, tmp_path) -> None:
    from PIL import Image

    from lab.training import features as feats
    from visualsearch.embedding import configure, current_settings

    images = [Image.open(p) for p in sorted((tiny_data[0] / "images").glob("*.jpg"))[:4]]
    before = current_settings().onnx_cache_dir
    configure(onnx_cache_dir=str(tmp_path))  # the exported trunk goes to a folder of the test's own
    try:
        onnx = feats.TrunkEncoder("efficientnet_lite0", tail_blocks=1, backend="auto")  # what "auto" is on a CPU
    finally:
        configure(onnx_cache_dir=str(before))
    assert [p.name.startswith("efficientnet_lite0-trunk1-") for p in tmp_path.iterdir()] == [True]
    torch_ = feats.TrunkEncoder("efficientnet_lite0", tail_blocks=1, backend="torch")
    assert (onnx.backend, torch_.backend) == ("onnx", "torch")
    # Either fills one cache: same fingerprint, maps equal to a cosine of 0.9999 per view.
    assert onnx.fingerprint == torch_.fingerprint
    assert onnx.fingerprint != feats.TrunkEncoder("efficientnet_lite0", backend="torch").fingerprint
    a, b = onnx.encode(images), torch_.encode(images)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert a.shape == (4, 192 * 49) and cosine.min() >= 0.9999


def test_trunk_encoder_refuses_onnx_on_a_gpu_device() -> None:
    # The serving embedder's rule (resolve_backend): ONNX Runtime runs on the CPU here, so
    # "onnx" with a CUDA device is a contradiction, not a silent CPU run of an hour's caching.
    from lab.training import features as feats
    from visualsearch.embedding.errors import EmbedderConfigError

    with pytest.raises(EmbedderConfigError, match="runs on the CPU"):
        feats.TrunkEncoder("efficientnet_lite0", device="cuda", tail_blocks=1, backend="onnx")
