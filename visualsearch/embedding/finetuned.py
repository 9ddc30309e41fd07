"""Fine-tuned models: a frozen backbone plus a learned projection head, from ``var/models/<name>/``.

``manage.py train_embedder`` (``lab.training``) publishes a model as a folder::

    <models dir>/<name>/metadata.json   # format, backbone, dim, head shape, seed, split, metrics ...
    <models dir>/<name>/weights.pt      # state_dict: "head.*" (and "tail.*" if the last stage was trained)
    <models dir>/<name>/categories.npz  # optional: a linear category classifier on the embedding

``load_embedder(name)`` finds the folder in the models directory (``configure(models_dir=)``,
env ``VISUALSEARCH_MODELS_DIR``, default ``var/models`` in the repository), else among the
models shipped with the code (``visualsearch/embedding/shipped/<name>/``, float16 weights and
a ``MODEL_CARD.md``), and builds
``backbone trunk -> last stage ("tail") -> L2 normalise -> head``; the ``Embedder`` normalises
the head's output. The backbone's own weights come from where they always do
(``weights_path``), so a checkpoint holds only what training changed.

For EfficientNet-Lite0 the split is: trunk = stem + the 16 MBConv blocks (320x7x7 maps),
tail = ``_conv_head`` (1x1 conv to 1,280) + BN + ReLU6 + global average pool, i.e. exactly
``extract_features(x).mean((2, 3))``. A model trained with ``tail_blocks`` = k (metadata; 0
when absent) moves the last k MBConv blocks from the trunk to the tail (k = 1: the trunk ends
at 192x7x7). Other backbones have trunk = the whole extractor and an identity tail (their last
stage cannot be trained here).

Weights: ``weights.pt``, plus ``weights-*.pt`` parts where a shipped model's float16 weights
are split to keep each committed file under 2 MB; the parts are merged on load.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BackboneSpec, get_backbone
from .config import MODEL_NAMES, model_folder
from .errors import EmbedderConfigError

CHECKPOINT_FORMAT = 1
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.pt"
# Further parts of one state_dict (``ship_model`` splits a large one); merged on load.
WEIGHTS_PARTS = "weights-*.pt"


def _drop_connect_rate(net: nn.Module, idx: int) -> float:
    rate = net._global_params.drop_connect_rate
    return rate * float(idx) / len(net._blocks) if rate else rate


class LiteTrunk(nn.Module):
    """EfficientNet-Lite stem and all blocks but the last ``tail_blocks``: (N, 3, 224, 224) ->
    (N, 320, 7, 7), or (N, 192, 7, 7) with one block left to the tail."""

    def __init__(self, net: nn.Module, tail_blocks: int = 0) -> None:
        super().__init__()
        self.net = net
        self.end = len(net._blocks) - tail_blocks

    def extra_repr(self) -> str:
        # In the repr, so that the ONNX export key (weights + repr) tells the splits apart.
        return f"blocks=0..{self.end - 1}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for idx in range(self.end):
            x = net._blocks[idx](x, drop_connect_rate=_drop_connect_rate(net, idx))
        return x


class LiteTail(nn.Module):
    """EfficientNet-Lite's last ``tail_blocks`` MBConv blocks (none by default), then its last
    stage: 1x1 conv to 1,280, BN, ReLU6, global average pool."""

    def __init__(self, net: nn.Module, tail_blocks: int = 0) -> None:
        super().__init__()
        first = len(net._blocks) - tail_blocks
        # Empty for tail_blocks 0: no state keys, so checkpoints of the conv head alone load as before.
        self.blocks = nn.ModuleList(net._blocks[first:])
        self.rates = [_drop_connect_rate(net, idx) for idx in range(first, len(net._blocks))]
        self.conv_head = net._conv_head
        self.bn = net._bn1
        self.act = net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self.blocks, self.rates, strict=True):
            x = block(x, drop_connect_rate=rate)
        return self.act(self.bn(self.conv_head(x))).mean(dim=(2, 3))


def split_backbone(name: str, extractor: nn.Module, tail_blocks: int = 0) -> tuple[nn.Module, nn.Module]:
    """(trunk, tail) of a built extractor, with ``tail(trunk(x)) == extractor(x)``; the tail
    holds the last ``tail_blocks`` MBConv blocks and the last stage."""
    if tail_trainable(name):
        net = extractor.net
        if not 0 <= tail_blocks < len(net._blocks):
            raise EmbedderConfigError(f"tail_blocks must be between 0 and {len(net._blocks) - 1}, not {tail_blocks}.")
        return LiteTrunk(net, tail_blocks), LiteTail(net, tail_blocks)
    if tail_blocks:
        raise EmbedderConfigError(f"The blocks of {name!r} cannot be trained here (tail_blocks {tail_blocks}).")
    return extractor, nn.Identity()


def tail_trainable(name: str) -> bool:
    return name.startswith("efficientnet_lite")


class ProjectionHead(nn.Module):
    """L2-normalised backbone features -> ``out_dim`` (linear, or one hidden layer with BN + ReLU).

    The input is normalised first, so the head sees exactly the vectors the ImageNet
    embedder stores; the caller normalises the output.
    """

    def __init__(self, in_dim: int, out_dim: int = 256, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, hidden
        if hidden:
            self.layers = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                nn.Linear(hidden, out_dim),
            )
        else:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(F.normalize(features, p=2.0, dim=1))


class FineTunedExtractor(nn.Module):
    """trunk -> tail -> head, the model inside a fine-tuned ``Embedder``."""

    def __init__(self, trunk: nn.Module, tail: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.trunk, self.tail, self.head = trunk, tail, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(self.trunk(x)))


def checkpoint_dir(models_dir: Path, name: str) -> Path:
    """Where the model ``name`` lives: the models directory's folder, else the shipped one
    (the models directory's, for a model that does not exist yet)."""
    return model_folder(name, models_dir) or Path(models_dir) / name


def read_metadata(models_dir: Path, name: str) -> dict:
    path = checkpoint_dir(models_dir, name) / METADATA_FILE
    if not path.is_file():
        raise EmbedderConfigError(
            f"No fine-tuned model {name!r}: {path} does not exist. Train it with "
            f"'python manage.py train_embedder --name {name}', or point VISUALSEARCH_MODELS_DIR "
            f"(Django setting VISUALSEARCH_MODELS_DIR) at the folder that holds it."
        )
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EmbedderConfigError(f"Cannot read the metadata of fine-tuned model {name!r} ({path}): {exc}") from exc
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise EmbedderConfigError(
            f"Fine-tuned model {name!r} ({path}) has checkpoint format {metadata.get('format')!r}; "
            f"this code reads format {CHECKPOINT_FORMAT}."
        )
    return metadata


def tail_blocks_of(metadata: dict) -> int:
    """How many MBConv blocks the model's tail holds (models trained before the option: 0)."""
    return int(metadata.get("tail_blocks", 0))


def head_from_metadata(metadata: dict) -> ProjectionHead:
    head = metadata["head"]
    return ProjectionHead(int(head["in_dim"]), int(head["out_dim"]), int(head.get("hidden", 0)))


def build_finetuned(name: str, models_dir: Path, weights_path: str | None) -> tuple[BackboneSpec, nn.Module, dict]:
    """(spec, extractor, metadata) of the fine-tuned model ``name``; the extractor is on the CPU, eval mode."""
    metadata = read_metadata(models_dir, name)
    if metadata.get("backbone") not in MODEL_NAMES:
        raise EmbedderConfigError(
            f"Fine-tuned model {name!r} names backbone {metadata.get('backbone')!r}, which is not one of {', '.join(MODEL_NAMES)}."
        )
    base = get_backbone(metadata["backbone"])
    folder = checkpoint_dir(models_dir, name)
    file = folder / WEIGHTS_FILE
    state: dict[str, torch.Tensor] = {}
    for part in [file, *sorted(folder.glob(WEIGHTS_PARTS))]:
        try:
            state.update(torch.load(part, map_location="cpu", weights_only=True))
        except Exception as exc:  # missing, corrupt, or a pickled object
            raise EmbedderConfigError(f"Cannot read the weights of fine-tuned model {name!r} from {part}: {exc}") from exc
    trunk, tail = split_backbone(base.name, base.build(weights_path), tail_blocks_of(metadata))
    head = head_from_metadata(metadata)
    model = FineTunedExtractor(trunk, tail, head)
    head_state = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    tail_state = {k.removeprefix("tail."): v for k, v in state.items() if k.startswith("tail.")}
    try:
        head.load_state_dict(head_state)
        if tail_state:
            tail.load_state_dict(tail_state)
    except RuntimeError as exc:
        raise EmbedderConfigError(f"Weights of fine-tuned model {name!r} ({file}) do not fit its metadata: {exc}") from exc
    spec = replace(base, name=name, dim=int(metadata["dim"]))
    return spec, model.eval(), metadata
