"""Fine-tuned models in the models directory: discovery, loading, active model, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from visualsearch.embedding import EmbedderConfigError, available_models, configure, current_settings, load_embedder
from visualsearch.embedding.config import DEFAULT_MODEL, MODEL_NAMES
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
    assert available_models() == [*MODEL_NAMES, *sorted([NAME, DEFAULT_MODEL])]  # the shipped one too
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
