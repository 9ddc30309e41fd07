"""Fine-tuned models in the models directory: discovery, loading, active model, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from visualsearch.embedding import EmbedderConfigError, available_models, configure, current_settings, load_embedder
from visualsearch.embedding.config import DEFAULT_MODEL, MODEL_NAMES, PREVIOUS_MODEL, shipped_models
from visualsearch.embedding.finetuned import CHECKPOINT_FORMAT, ProjectionHead

from .helpers import clean_embedding_config, picture  # noqa: F401  (autouse fixture)

NAME = "efficientnet_lite0-test-v1"


def publish(folder: Path, name: str = NAME, dim: int = 256, fmt: int = CHECKPOINT_FORMAT) -> ProjectionHead:
    """A checkpoint as train_embedder writes it, with a random head."""
    torch.manual_seed(0)
    head = ProjectionHead(1280, dim, hidden=0)
    (folder / name).mkdir(parents=True)
    torch.save({f"head.{k}": v for k, v in head.state_dict().items()}, folder / name / "weights.pt")
    metadata = {"format": fmt, "name": name, "backbone": "efficientnet_lite0", "dim": dim,
                "head": {"in_dim": 1280, "hidden": 0, "out_dim": dim}, "train_last_stage": False}
    (folder / name / "metadata.json").write_text(json.dumps(metadata))
    return head.eval()


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    configure(models_dir=tmp_path)
    with pytest.raises(EmbedderConfigError, match="train_embedder") as error:
        load_embedder("efficientnet_lite0-triplet-v9")
    assert "VISUALSEARCH_MODELS_DIR" in str(error.value) and str(tmp_path) in str(error.value)


def test_discovered_model_loads_with_its_dimension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = publish(tmp_path)
    (tmp_path / "not-a-model").mkdir()  # no metadata.json: ignored
    monkeypatch.setenv("VISUALSEARCH_MODELS_DIR", str(tmp_path))
    configure(device="cpu")
    shipped = shipped_models()
    assert {PREVIOUS_MODEL, DEFAULT_MODEL} <= set(shipped)
    assert available_models() == [*MODEL_NAMES, *sorted([NAME, *shipped])]  # the shipped ones too
    embedder = load_embedder(NAME)
    assert (embedder.name, embedder.dim) == (NAME, 256)
    assert embedder.metadata["backbone"] == "efficientnet_lite0"
    images = [picture(1), picture(2)]
    vectors = embedder.embed(images)
    assert vectors.shape == (2, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The head on the ImageNet vectors gives the same thing without a second forward pass.
    base = load_embedder("efficientnet_lite0").embed(images)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(head(torch.as_tensor(base)), dim=1).numpy()
    np.testing.assert_allclose(vectors, expected, atol=1e-4)
    np.testing.assert_allclose(embedder.project_base_vectors(base), expected, atol=1e-5)


def test_active_model_is_one_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(tmp_path)
    configure(models_dir=tmp_path, active_model=NAME, device="cpu")
    assert current_settings().active_model == NAME
    assert load_embedder().name == NAME
    configure(active_model="efficientnet_lite0")
    assert load_embedder().dim == 1280
    # The environment variable works the same way.
    monkeypatch.setenv("VISUALSEARCH_MODEL", NAME)
    from visualsearch.embedding import reset_configuration

    reset_configuration()
    monkeypatch.setenv("VISUALSEARCH_MODELS_DIR", str(tmp_path))
    assert current_settings().active_model == NAME


def test_unknown_active_model_changes_nothing(tmp_path: Path) -> None:
    publish(tmp_path)
    with pytest.raises(EmbedderConfigError, match="Unknown embedding model"):
        configure(models_dir=tmp_path / "elsewhere", active_model=NAME)
    assert current_settings().active_model == DEFAULT_MODEL


def test_bad_checkpoints_are_config_errors(tmp_path: Path) -> None:
    publish(tmp_path, name="old-format", fmt=0)
    publish(tmp_path, name="wrong-dim", dim=128)
    meta = json.loads((tmp_path / "wrong-dim" / "metadata.json").read_text())
    meta["head"]["out_dim"] = 64
    (tmp_path / "wrong-dim" / "metadata.json").write_text(json.dumps(meta))
    publish(tmp_path, name="no-weights")
    (tmp_path / "no-weights" / "weights.pt").unlink()
    configure(models_dir=tmp_path, device="cpu")
    with pytest.raises(EmbedderConfigError, match="format"):
        load_embedder("old-format")
    with pytest.raises(EmbedderConfigError, match="do not fit"):
        load_embedder("wrong-dim")
    with pytest.raises(EmbedderConfigError, match="Cannot read the weights"):
        load_embedder("no-weights")


def test_a_tail_with_blocks_splits_the_backbone_exactly() -> None:
    from visualsearch.embedding.backbones import get_backbone
    from visualsearch.embedding.finetuned import split_backbone

    extractor = get_backbone("efficientnet_lite0").build(None).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = extractor(x)
        for blocks, channels in ((0, 320), (1, 192), (2, 192)):
            trunk, tail = split_backbone("efficientnet_lite0", extractor, blocks)
            maps = trunk(x)
            assert maps.shape[1:] == (channels, 7, 7)
            torch.testing.assert_close(tail(maps), expected)
            assert len(tail.blocks) == blocks
    # The conv head alone keeps the state keys checkpoints were written with.
    assert {k.split(".")[0] for k in split_backbone("efficientnet_lite0", extractor)[1].state_dict()} == {"conv_head", "bn"}
    with pytest.raises(EmbedderConfigError, match="tail_blocks"):
        split_backbone("efficientnet_lite0", extractor, 16)
    with pytest.raises(EmbedderConfigError, match="cannot be trained"):
        split_backbone("resnet50", extractor, 1)


def test_weights_split_in_parts_load_as_one(tmp_path: Path) -> None:
    """A model with a trained block, its float16 weights in two files (as ship_model writes a
    state over 2 MB), embeds as the same weights in one file."""
    from lab.management.commands.ship_model import weight_parts
    from visualsearch.embedding.backbones import get_backbone
    from visualsearch.embedding.finetuned import split_backbone

    torch.manual_seed(4)
    head = ProjectionHead(1280, 64)
    _, tail = split_backbone("efficientnet_lite0", get_backbone("efficientnet_lite0").build(None), 1)
    with torch.no_grad():
        tail.blocks[0]._project_conv.weight.mul_(1.2)
    state = {f"head.{k}": v for k, v in head.state_dict().items()} | {f"tail.{k}": v for k, v in tail.state_dict().items()}
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {"format": CHECKPOINT_FORMAT, "backbone": "efficientnet_lite0", "dim": 64,
                "head": {"in_dim": 1280, "hidden": 0, "out_dim": 64}, "train_last_stage": True, "tail_blocks": 1}
    parts = weight_parts(state)
    assert set(parts) == {"weights.pt", "weights-block0.pt"}
    assert set(parts["weights-block0.pt"]) == {k for k in state if k.startswith("tail.blocks.0.")}
    assert not any(k.startswith("tail.blocks.") for k in parts["weights.pt"])
    for name, files in (("one-file", {"weights.pt": state}), ("two-files", parts)):
        (tmp_path / name).mkdir()
        for file, part in files.items():
            torch.save(part, tmp_path / name / file)
        (tmp_path / name / "metadata.json").write_text(json.dumps({**metadata, "name": name}))
    configure(models_dir=tmp_path, device="cpu", backend="torch")
    one, two = load_embedder("one-file"), load_embedder("two-files")
    torch.testing.assert_close(two._model.tail.blocks[0]._project_conv.weight, tail.blocks[0]._project_conv.weight.half().float())
    # The block the tail trains is the one the backbone runs: no second copy of it.
    assert two._model.trunk.net._blocks[15] is two._model.tail.blocks[0]
    np.testing.assert_array_equal(one.embed([picture(1)]), two.embed([picture(1)]))
    # A part missing from the folder is not silently an ImageNet block.
    (tmp_path / "two-files" / "weights-block0.pt").unlink()
    from visualsearch.embedding import clear_cache

    clear_cache()
    with pytest.raises(EmbedderConfigError, match="do not fit"):
        load_embedder("two-files")
