"""Configuration, model names, cache behaviour and lazy imports (no model forward passes)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from visualsearch.embedding import (
    DEFAULT_MODEL,
    DEFAULT_RESIZE_POLICY,
    EmbedderConfigError,
    available_models,
    configure,
    current_settings,
    load_embedder,
)
from visualsearch.embedding.config import PREVIOUS_MODEL, shipped_models

from .helpers import clean_embedding_config  # noqa: F401  (autouse fixture)

REPO_ROOT = Path(__file__).resolve().parents[3]
# The fine-tuned models in the repository: the default and the ones shipped before it.
SHIPPED = shipped_models()


def test_available_models() -> None:
    # The backbones, then the fine-tuned models: here only the shipped ones, the default and
    # those before it (the models directory is empty).
    assert available_models() == [
        "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet50", "vgg16", "googlenet",
        *sorted(SHIPPED),
    ]
    assert {PREVIOUS_MODEL, DEFAULT_MODEL} <= set(SHIPPED)


def test_backbone_registry_matches_model_names() -> None:
    from visualsearch.embedding.backbones import BACKBONES

    assert list(BACKBONES) == [m for m in available_models() if m not in SHIPPED]
    assert {name: spec.dim for name, spec in BACKBONES.items()} == {
        "efficientnet_lite0": 1280,
        "efficientnet_lite1": 1280,
        "efficientnet_lite2": 1280,
        "resnet50": 2048,
        "vgg16": 512,
        "googlenet": 1024,
    }


def test_unknown_model_lists_available_names() -> None:
    with pytest.raises(EmbedderConfigError) as excinfo:
        load_embedder("alexnet")
    message = str(excinfo.value)
    assert "alexnet" in message
    for name in available_models():
        assert name in message


def test_configure_rejects_unknown_model_and_changes_nothing() -> None:
    with pytest.raises(EmbedderConfigError, match="efficientnet_lite0"):
        configure(active_model="alexnet", resize_policy="pad")
    assert current_settings().resize_policy == DEFAULT_RESIZE_POLICY


@pytest.mark.parametrize(
    "kwargs",
    [{"device": "tpu"}, {"resize_policy": "squash"}, {"weights": {"alexnet": "/x.pth"}}],
)
def test_configure_rejects_invalid_values(kwargs: dict) -> None:
    with pytest.raises(EmbedderConfigError):
        configure(**kwargs)


def test_defaults() -> None:
    settings = current_settings()
    assert settings.active_model == DEFAULT_MODEL  # the shipped fine-tuned model
    assert settings.device == "auto"
    assert settings.resize_policy == DEFAULT_RESIZE_POLICY
    assert settings.weights_path("resnet50") is None


def test_env_vars_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_MODEL", "googlenet")
    monkeypatch.setenv("VISUALSEARCH_DEVICE", "cpu")
    monkeypatch.setenv("VISUALSEARCH_RESNET50_WEIGHTS", "/models/r50.pth")
    settings = current_settings()
    assert settings.active_model == "googlenet"
    assert settings.device == "cpu"
    assert settings.weights_path("resnet50") == "/models/r50.pth"


def test_invalid_env_model_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_MODEL", "alexnet")
    with pytest.raises(EmbedderConfigError, match="VISUALSEARCH_MODEL|alexnet"):
        load_embedder()


def test_configure_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_MODEL", "googlenet")
    monkeypatch.setenv("VISUALSEARCH_RESNET50_WEIGHTS", "/env/r50.pth")
    configure(active_model="vgg16", weights={"resnet50": "/configured/r50.pth"})
    settings = current_settings()
    assert settings.active_model == "vgg16"
    assert settings.weights_path("resnet50") == "/configured/r50.pth"


def test_configure_none_leaves_settings_unchanged() -> None:
    configure(resize_policy="pad", device="cpu")
    configure(active_model="resnet50")
    settings = current_settings()
    assert (settings.resize_policy, settings.device, settings.active_model) == ("pad", "cpu", "resnet50")


def test_cache_returns_same_object_and_configure_clears_it() -> None:
    first = load_embedder()
    assert load_embedder() is first
    assert load_embedder(DEFAULT_MODEL) is first
    configure(resize_policy="pad")
    second = load_embedder()
    assert second is not first
    assert second.resize_policy == "pad"


def test_concurrent_loads_share_one_instance() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        embedders = list(pool.map(lambda _: load_embedder(), range(4)))
    assert all(embedder is embedders[0] for embedder in embedders)


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, visualsearch.embedding; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_torch_threads_env_is_applied_on_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setenv("VISUALSEARCH_TORCH_THREADS", "1")
    load_embedder()
    assert calls == [1]


def test_torch_threads_left_alone_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    load_embedder()
    assert calls == []


@pytest.mark.parametrize("value", ["0", "two"])
def test_invalid_torch_threads_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VISUALSEARCH_TORCH_THREADS", value)
    with pytest.raises(EmbedderConfigError, match="VISUALSEARCH_TORCH_THREADS"):
        current_settings()


@pytest.mark.parametrize(
    ("torch_threads", "onnx_threads", "expected"),
    [("1", "2", 2), ("1", None, 1), (None, "3", 3)],
)
def test_onnx_runtime_threads_follow_their_own_setting_else_torchs(
    monkeypatch: pytest.MonkeyPatch, torch_threads: str | None, onnx_threads: str | None, expected: int,
) -> None:
    # A web worker keeps torch at one thread and gives ONNX Runtime the cores.
    from visualsearch.embedding import api, onnx_backend

    for variable, value in (("VISUALSEARCH_TORCH_THREADS", torch_threads), ("VISUALSEARCH_ONNX_THREADS", onnx_threads)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    asked: list[int] = []
    monkeypatch.setattr(onnx_backend, "onnx_runner_load", lambda model, **kwargs: asked.append(kwargs["threads"]) or "runner")
    spec = SimpleNamespace(input_size=224)
    assert api._onnx_runner("efficientnet_lite0", spec, object(), current_settings()) == "runner"
    assert asked == [expected]


@pytest.mark.parametrize("value", ["0", "-1", "all"])
def test_invalid_onnx_threads_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VISUALSEARCH_ONNX_THREADS", value)
    with pytest.raises(EmbedderConfigError, match="VISUALSEARCH_ONNX_THREADS"):
        current_settings()
