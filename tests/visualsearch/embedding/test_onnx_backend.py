"""The ONNX Runtime backend: same vectors as torch, a cached export, the backend choice, the fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from visualsearch.embedding import EmbedderConfigError, clear_cache, configure, current_settings, load_embedder
from visualsearch.embedding import onnx_backend
from visualsearch.embedding.config import resolve_backend
from visualsearch.embedding.finetuned import CHECKPOINT_FORMAT, LiteTail, ProjectionHead
from visualsearch.embedding.onnx_backend import OnnxExportError, export_key, onnx_runner_load

from .helpers import clean_embedding_config, jpeg_roundtrip, picture  # noqa: F401  (autouse fixture)

# The contract between the backends, per image.
MIN_COSINE = 0.9999
FINETUNED = "efficientnet_lite0-onnx-test"


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: each model is exported once (seconds), then reused."""
    return tmp_path_factory.mktemp("onnx_cache")


def images() -> list:
    # Different sizes and a JPEG round trip: real inputs, not the export's random probe.
    return [picture(seed, size) for seed, size in ((1, (224, 224)), (2, (300, 400)), (3, (96, 64)))] + [
        jpeg_roundtrip(picture(4, (256, 256))), jpeg_roundtrip(picture(5, (180, 240)), quality=40),
    ]


def both_backends(name: str, onnx_cache: Path):
    configure(device="cpu", onnx_cache_dir=onnx_cache)
    return load_embedder(name, backend="torch"), load_embedder(name, backend="onnx")


def assert_same_vectors(torch_embedder, onnx_embedder) -> None:
    assert (torch_embedder.backend, onnx_embedder.backend) == ("torch", "onnx")
    pictures = images()
    expected = torch_embedder.embed(pictures)
    got = onnx_embedder.embed(pictures)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= MIN_COSINE, cosines
    # The batch axis is dynamic: batches of 1 and of 2 give the same rows as the batch of 5.
    np.testing.assert_allclose(onnx_embedder.embed(pictures, batch_size=1), got, atol=1e-5)
    np.testing.assert_allclose(onnx_embedder.embed(pictures, batch_size=2), got, atol=1e-5)


@pytest.mark.slow
def test_imagenet_model_agrees_with_torch(onnx_cache: Path) -> None:
    assert_same_vectors(*both_backends("efficientnet_lite0", onnx_cache))


def publish_finetuned(folder: Path) -> None:
    """A fine-tuned model with everything an export must carry: a hidden layer with BN and a
    retrained last stage (random, seeded)."""
    from visualsearch.embedding.backbones import get_backbone
    from visualsearch.embedding.finetuned import split_backbone

    torch.manual_seed(3)
    head = ProjectionHead(1280, 64, hidden=128).eval()
    with torch.no_grad():
        head.layers[2].running_mean.uniform_(-0.1, 0.1)
        head.layers[2].running_var.uniform_(0.5, 2.0)
    _, tail = split_backbone("efficientnet_lite0", get_backbone("efficientnet_lite0").build(None))
    assert isinstance(tail, LiteTail)
    with torch.no_grad():
        tail.conv_head.weight.mul_(1.05)
    state = {f"head.{k}": v for k, v in head.state_dict().items()} | {f"tail.{k}": v for k, v in tail.state_dict().items()}
    (folder / FINETUNED).mkdir(parents=True)
    torch.save(state, folder / FINETUNED / "weights.pt")
    metadata = {"format": CHECKPOINT_FORMAT, "name": FINETUNED, "backbone": "efficientnet_lite0", "dim": 64,
                "head": {"in_dim": 1280, "hidden": 128, "out_dim": 64}, "train_last_stage": True}
    (folder / FINETUNED / "metadata.json").write_text(json.dumps(metadata))


@pytest.mark.slow
def test_finetuned_model_agrees_with_torch(tmp_path: Path, onnx_cache: Path) -> None:
    publish_finetuned(tmp_path / "models")
    configure(models_dir=tmp_path / "models")
    torch_embedder, onnx_embedder = both_backends(FINETUNED, onnx_cache)
    assert onnx_embedder.dim == 64
    assert_same_vectors(torch_embedder, onnx_embedder)
    assert len(list(onnx_cache.glob(f"{FINETUNED}-*.onnx"))) == 1


# A tiny module for the cache's behaviour: exports in a fraction of a second.
SMALL_INPUT = 32


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ).eval()


def test_export_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = onnx_runner_load(small_model(), name="small", input_size=SMALL_INPUT, cache_dir=tmp_path, threads=1)
    assert first.path.parent == tmp_path and first.path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # written atomically: no temporary left
    batch = torch.randn(4, 3, SMALL_INPUT, SMALL_INPUT).numpy()

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the graph")

    monkeypatch.setattr(onnx_backend, "onnx_export", no_export)
    second = onnx_runner_load(small_model(), name="small", input_size=SMALL_INPUT, cache_dir=tmp_path, threads=1)
    assert second.path == first.path
    np.testing.assert_allclose(second.run(batch), first.run(batch), atol=1e-6)


def test_cache_key_follows_weights_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_model()
    key = export_key(model, SMALL_INPUT)
    assert export_key(small_model(), SMALL_INPUT) == key  # same weights, same key
    assert export_key(model, SMALL_INPUT + 1) != key
    with torch.no_grad():
        model[1].running_mean[0] += 1e-3  # a buffer counts as much as a parameter
    assert export_key(model, SMALL_INPUT) != key
    monkeypatch.setattr(onnx_backend, "OPSET", onnx_backend.OPSET + 1)
    assert export_key(small_model(), SMALL_INPUT) != key


def test_damaged_cache_file_is_exported_again(tmp_path: Path) -> None:
    runner = onnx_runner_load(small_model(), name="small", input_size=SMALL_INPUT, cache_dir=tmp_path, threads=1)
    runner.path.write_bytes(b"not a graph")
    again = onnx_runner_load(small_model(), name="small", input_size=SMALL_INPUT, cache_dir=tmp_path, threads=1)
    assert again.path == runner.path and runner.path.stat().st_size > 100
    assert again.run(torch.zeros(1, 3, SMALL_INPUT, SMALL_INPUT).numpy()).shape == (1, 8)


def test_backend_choice() -> None:
    assert resolve_backend("auto", "cpu") == "onnx"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("auto", "cuda:1") == "torch"
    assert resolve_backend("torch", "cpu") == "torch"
    assert resolve_backend("onnx", "cpu") == "onnx"
    with pytest.raises(EmbedderConfigError, match="runs on the CPU"):
        resolve_backend("onnx", "cuda")


def test_backend_setting_env_and_configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VISUALSEARCH_BACKEND")
    assert current_settings().backend == "auto"  # the default
    monkeypatch.setenv("VISUALSEARCH_BACKEND", "ONNX")
    monkeypatch.setenv("VISUALSEARCH_ONNX_CACHE_DIR", str(tmp_path))
    assert (current_settings().backend, current_settings().onnx_cache_dir) == ("onnx", tmp_path)
    configure(backend="torch")  # configure() wins over the environment
    assert current_settings().backend == "torch"
    monkeypatch.setenv("VISUALSEARCH_BACKEND", "tensorrt")
    configure(backend="auto")
    with pytest.raises(EmbedderConfigError, match="Unknown embedding backend"):
        configure(backend="tensorrt")
    assert current_settings().backend == "auto"
    with pytest.raises(EmbedderConfigError, match="Unknown embedding backend"):
        load_embedder(backend="openvino")


def test_cpu_default_runs_onnx_and_a_failed_export_falls_back_to_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("VISUALSEARCH_BACKEND")
    configure(device="cpu", onnx_cache_dir=tmp_path)
    chosen = []

    def failing_export(model, path, input_size):
        chosen.append(path)
        raise OnnxExportError("an operator the exporter does not know")

    monkeypatch.setattr(onnx_backend, "onnx_export", failing_export)
    with caplog.at_level(logging.WARNING, logger="visualsearch.embedding.api"):
        embedder = load_embedder("efficientnet_lite0")
    assert chosen, "the CPU default did not try ONNX Runtime"
    assert embedder.backend == "torch"
    assert "falling back to torch" in caplog.text and "does not know" in caplog.text
    vectors = embedder.embed([picture(1)])
    assert vectors.shape == (1, 1280) and list(tmp_path.iterdir()) == []
    clear_cache()
