"""torchvision backbones: weight configuration errors and loading local state_dicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from visualsearch.embedding import EmbedderConfigError, configure, load_embedder

from .helpers import clean_embedding_config  # noqa: F401  (autouse fixture)
from .helpers import picture

TORCHVISION_MODELS = ["resnet50", "vgg16", "googlenet"]


def save_random_state_dict(name: str, path: Path) -> Path:
    """What a user would save from torchvision, classifier head included."""
    if name == "googlenet":
        # Like torchvision's published file: auxiliary classifiers included.
        model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    else:
        model = getattr(torchvision.models, name)(weights=None)
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_missing_weights_name_the_setting(name: str) -> None:
    with pytest.raises(EmbedderConfigError) as excinfo:
        load_embedder(name)
    message = str(excinfo.value)
    assert f'VISUALSEARCH_WEIGHTS["{name}"]' in message
    assert f"VISUALSEARCH_{name.upper()}_WEIGHTS" in message
    assert "never downloaded" in message


def test_nonexistent_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.pth"
    monkeypatch.setenv("VISUALSEARCH_RESNET50_WEIGHTS", str(missing))
    with pytest.raises(EmbedderConfigError, match="not found") as excinfo:
        load_embedder("resnet50")
    assert str(missing) in str(excinfo.value)
    assert "VISUALSEARCH_RESNET50_WEIGHTS" in str(excinfo.value)


def test_unreadable_weights_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    configure(weights={"googlenet": str(corrupt)})
    with pytest.raises(EmbedderConfigError, match="Cannot read weights"):
        load_embedder("googlenet")


def test_weights_for_another_architecture_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "googlenet.pth"
    save_random_state_dict("googlenet", path)
    configure(weights={"resnet50": str(path)})
    with pytest.raises(EmbedderConfigError, match="do not fit"):
        load_embedder("resnet50")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dim"), [("resnet50", 2048), ("vgg16", 512), ("googlenet", 1024)])
def test_loads_local_state_dict(tmp_path: Path, name: str, dim: int) -> None:
    path = save_random_state_dict(name, tmp_path / f"{name}.pth")
    configure(weights={name: str(path)})
    embedder = load_embedder(name)
    assert (embedder.name, embedder.dim, embedder.device) == (name, dim, "cpu")
    vectors = embedder.embed([picture(1, (32, 40)), picture(2, (24, 24))])
    assert vectors.shape == (2, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_checkpoint_variants_are_accepted(tmp_path: Path) -> None:
    """Nested {"state_dict": ...}, DataParallel "module." keys, and no head at all."""
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    state = model.state_dict()
    headless_wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items() if not k.startswith("fc.")}}
    path = tmp_path / "checkpoint.pth"
    torch.save(headless_wrapped, path)
    configure(weights={"googlenet": str(path)})

    embedder = load_embedder("googlenet")
    image = picture(5)
    # Same weights as ``model`` without its head -> same pooled features.
    model.fc = torch.nn.Identity()
    model.transform_input = True
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(model.eval()(embedder.preprocess(image)[None]), dim=1)
    np.testing.assert_allclose(embedder.embed([image]), expected.numpy(), atol=1e-4)
