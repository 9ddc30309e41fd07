"""Embedding configuration: constants, environment variables and overrides.

This module must stay free of torch (and of Django) so that importing
``visualsearch.embedding`` is cheap for web processes that never embed.

Precedence for every setting: value pushed with ``configure()`` (the Django
app forwards its settings that way) > environment variable > built-in default.
Environment variables are read when settings are resolved, i.e. when a model
is loaded, not at import time.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EmbedderConfigError

MODEL_NAMES: tuple[str, ...] = (
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet50", "vgg16", "googlenet",
)
# The fine-tuned model shipped in shipped/<name>/ (see its MODEL_CARD.md); the ImageNet
# backbones stay available by name. The one shipped before it stays in shipped/ too, so that a
# deployment that promoted it keeps serving it across an upgrade and can roll back to it.
DEFAULT_MODEL = "efficientnet_lite0-vitrine-v10"
PREVIOUS_MODEL = "efficientnet_lite0-vitrine-v9"

RESIZE_POLICIES: tuple[str, ...] = ("pad", "crop", "stretch")

# The catalogue photos were squashed from 3:4 to 1:1 by their source, and only "stretch"
# gives an unsquashed query of the same photo that same geometry; it retrieved best of the
# three (docs/embedding.md, "Measurement and chosen defaults", with the numbers and the
# command). Re-measure if the catalogue ever stores aspect-preserving images.
DEFAULT_RESIZE_POLICY = "stretch"

# The fastest CPU batch of 1 / 8 / 32 (docs/embedding.md, "CPU throughput"): bigger CPU
# batches get slower as activations fall out of cache. A GPU wants larger batches.
DEFAULT_BATCH_SIZE = 8

ENV_MODEL = "VISUALSEARCH_MODEL"
ENV_DEVICE = "VISUALSEARCH_DEVICE"
ENV_RESIZE_POLICY = "VISUALSEARCH_RESIZE_POLICY"
ENV_TORCH_THREADS = "VISUALSEARCH_TORCH_THREADS"
# ONNX Runtime's intra-op threads when they should differ from torch's (unset: torch's
# setting, else one per core). A web worker wants them even where it keeps torch at one
# thread: ONNX Runtime's threads sleep between operators (onnx_backend.ALLOW_SPINNING), so
# two workers of two threads each on 2 cores embedded as many photos as two of one thread
# (192-198 against 192-208 images/s, batch 1), while one search alone took 7.3 instead of
# 10.6 ms in the forward pass (p50 of 150, 20 ms of other work between runs, 2026-12-06).
ENV_ONNX_THREADS = "VISUALSEARCH_ONNX_THREADS"
ENV_MODELS_DIR = "VISUALSEARCH_MODELS_DIR"
ENV_BACKEND = "VISUALSEARCH_BACKEND"
ENV_ONNX_CACHE_DIR = "VISUALSEARCH_ONNX_CACHE_DIR"
ENV_MIRROR_AVERAGE = "VISUALSEARCH_MIRROR_AVERAGE"
ENV_QUERY_CROP = "VISUALSEARCH_QUERY_CROP"

# Whether a vector is the mean of the image's and its mirror image's (two forward passes in
# one batch). "model": as the model's metadata.json says ("mirror_average"; the models
# whose hold-out numbers were measured that way set it), "on" / "off": for every model (an
# operator who wants the indexing throughput back; the evaluation's comparisons). An index
# made the other way keeps working (v10's hold-out views R@1: 0.851 plain, 0.857 / 0.865 with
# only the queries / only the catalogue averaged, 0.871 both), and a re-embed gets the rest.
MIRROR_AVERAGE_MODES: tuple[str, ...] = ("model", "on", "off")
METADATA_MIRROR_AVERAGE = "mirror_average"

# A shopper's whole photo (a query; never a catalogue photo, nor a region of a photo, which is
# framed on its garment already) is embedded as itself and as its centre crop of this share of
# each side, and searched with the normalised sum of the two vectors: the garment fills more of
# the crop, as it fills a catalogue photo. "model": as the model's metadata.json says
# ("query_crop": the share, or absent); "off": the whole photo only, for every model (an
# operator trading v10's quality for half the forward passes of a photo search: 38 against 50
# ms p50 through gunicorn on a 2-core box). The catalogue's vectors are not touched, so
# switching needs no re-embed. On v10's hold-out, centre crop 0.8: views R@1 0.871 -> 0.903,
# consumer P@10 as served 0.797 -> 0.812 (docs/benchmarks.md, "The query's centre crop");
# averaging crops into the catalogue's vectors made every measure worse (session 36).
QUERY_CROP_MODES: tuple[str, ...] = ("model", "off")
METADATA_QUERY_CROP = "query_crop"

# Who runs the forward pass. "auto": ONNX Runtime on the CPU, where it ran the same
# EfficientNet-Lite0 graph about 3-4x faster than torch eager on the 2-core box
# (docs/benchmarks.md, "Inference backends"), and torch on CUDA, where ONNX Runtime's CPU
# provider would leave the GPU idle. Training always uses torch.
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
# Exported graphs, one file per (model weights, export settings): see onnx_backend.py.
DEFAULT_ONNX_CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "cache" / "onnx"

# Fine-tuned models (manage.py train_embedder) live in <models dir>/<name>/metadata.json.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "var" / "models"
# Models shipped with the code (small weights, a model card each): found after the models dir.
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent / "shipped"
FINETUNED_METADATA = "metadata.json"
# A fine-tuned model's name: it becomes a folder name and part of an index name.
_FINETUNED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def weights_env_var(name: str) -> str:
    """Environment variable holding the weight file for ``name``."""
    return f"VISUALSEARCH_{name.upper()}_WEIGHTS"


def weights_setting_hint(name: str) -> str:
    """Human-readable names of both places a weight path can be set."""
    return f'VISUALSEARCH_WEIGHTS["{name}"] (Django setting) or env {weights_env_var(name)}'


@dataclass(frozen=True)
class EmbeddingSettings:
    """Resolved configuration. ``device`` is ``"auto"`` unless pinned."""

    active_model: str = DEFAULT_MODEL
    weights: Mapping[str, str] = field(default_factory=dict)
    device: str = "auto"
    resize_policy: str = DEFAULT_RESIZE_POLICY
    num_threads: int | None = None
    onnx_threads: int | None = None  # None: num_threads
    models_dir: Path = DEFAULT_MODELS_DIR
    backend: str = "auto"
    onnx_cache_dir: Path = DEFAULT_ONNX_CACHE_DIR
    mirror_average: str = "model"
    query_crop: str = "model"

    def mirrors(self, metadata: Mapping[str, Any] | None) -> bool:
        """Whether a model with this ``metadata`` (None: a backbone) averages with the mirror image."""
        if self.mirror_average != "model":
            return self.mirror_average == "on"
        return bool((metadata or {}).get(METADATA_MIRROR_AVERAGE, False))

    def query_crop_share(self, metadata: Mapping[str, Any] | None) -> float | None:
        """The centre crop's share of each side that a model with this ``metadata`` (None: a
        backbone) averages into a query's vector, or None: the whole photo only."""
        if self.query_crop == "off":
            return None
        share = (metadata or {}).get(METADATA_QUERY_CROP)
        return None if share is None else validate_query_crop_share(share)

    def weights_path(self, name: str) -> str | None:
        """Configured weight file for ``name``; configure() wins over the env."""
        configured = self.weights.get(name)
        if configured:
            return configured
        return _env(weights_env_var(name))


def _models_in(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {
        entry.name for entry in root.iterdir()
        if _FINETUNED_NAME.match(entry.name) and entry.name not in MODEL_NAMES
        and (entry / FINETUNED_METADATA).is_file()
    }


def finetuned_models(models_dir: Path | None = None) -> list[str]:
    """Names of the fine-tuned models: the shipped ones and those in the models directory (sorted)."""
    root = Path(models_dir) if models_dir is not None else resolved_models_dir()
    return sorted(set(shipped_models()) | _models_in(root))


def shipped_models() -> list[str]:
    """Names of the fine-tuned models shipped in the repository (sorted)."""
    return sorted(_models_in(SHIPPED_MODELS_DIR))


def model_folder(name: str, models_dir: Path | None = None) -> Path | None:
    """The folder of the fine-tuned model ``name``: the models directory's, else the shipped one."""
    if not isinstance(name, str) or not _FINETUNED_NAME.match(name) or name in MODEL_NAMES:
        return None
    root = Path(models_dir) if models_dir is not None else resolved_models_dir()
    for folder in (root / name, SHIPPED_MODELS_DIR / name):
        if (folder / FINETUNED_METADATA).is_file():
            return folder
    return None


def is_shipped(name: str) -> bool:
    return (SHIPPED_MODELS_DIR / name / FINETUNED_METADATA).is_file()


def is_finetuned(name: str) -> bool:
    return name not in MODEL_NAMES


def validate_model_name(name: str, models_dir: Path | None = None) -> str:
    """A backbone name, or the name of a fine-tuned model present in the models directory."""
    if name in MODEL_NAMES:
        return name
    root = Path(models_dir) if models_dir is not None else resolved_models_dir()
    if model_folder(name, root) is not None:
        return name
    found = finetuned_models(root)
    raise EmbedderConfigError(
        f"Unknown embedding model {name!r}. Available models: {', '.join(MODEL_NAMES + tuple(found))}. "
        f"Fine-tuned models are folders <name>/{FINETUNED_METADATA} in {root} (set {ENV_MODELS_DIR} or "
        f"the Django setting VISUALSEARCH_MODELS_DIR) or shipped in {SHIPPED_MODELS_DIR}; "
        f"'python manage.py train_embedder --name NAME' makes one."
    )


def validate_models_dir(path: Any, label: str = "models_dir") -> Path:
    if path is None or str(path).strip() == "":
        raise EmbedderConfigError(f"{label} must be a folder path.")
    return Path(os.fspath(path)).expanduser()


def validate_onnx_cache_dir(path: Any) -> Path:
    return validate_models_dir(path, "onnx_cache_dir")


def resolved_models_dir() -> Path:
    """The models directory: configure(models_dir=) > env VISUALSEARCH_MODELS_DIR > var/models."""
    with _overrides_lock:
        configured = _overrides.get("models_dir")
    if configured is not None:
        return configured
    env = _env(ENV_MODELS_DIR)
    return Path(env).expanduser() if env else DEFAULT_MODELS_DIR


def validate_device(device: str) -> str:
    device = device.strip().lower()
    if not _DEVICE_PATTERN.match(device):
        raise EmbedderConfigError(
            f"Invalid embedding device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'."
        )
    return device


def validate_resize_policy(policy: str) -> str:
    if policy not in RESIZE_POLICIES:
        raise EmbedderConfigError(
            f"Unknown resize policy {policy!r}. Available policies: {', '.join(RESIZE_POLICIES)}."
        )
    return policy


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    value = str(value).strip().lower()
    if value not in choices:
        raise EmbedderConfigError(f"Unknown {what} {value!r}; use one of {', '.join(choices)}.")
    return value


def validate_backend(backend: str) -> str:
    return _choice(backend, BACKENDS, "embedding backend")


def validate_mirror_average(mode: str) -> str:
    return _choice(mode, MIRROR_AVERAGE_MODES, "mirror averaging")


def validate_query_crop(mode: str) -> str:
    return _choice(mode, QUERY_CROP_MODES, "query crop")


def validate_query_crop_share(share: Any) -> float:
    """A centre crop's share of each side: above 0 and below 1 (1 would be the whole photo again)."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise EmbedderConfigError(f"A query crop is a share of each side between 0 and 1, got {share!r}.") from None
    if not 0.0 < value < 1.0:
        raise EmbedderConfigError(f"A query crop is a share of each side between 0 and 1, got {share!r}.")
    return value


def resolve_backend(requested: str, device: str) -> str:
    """The backend that runs on ``device`` (already resolved): ``"onnx"`` or ``"torch"``.

    ONNX Runtime runs here with its CPU provider only, so asking for it together with a
    pinned CUDA device is a contradiction, reported rather than silently moved to the CPU.
    """
    requested = validate_backend(requested)
    on_gpu = device.startswith("cuda")
    if requested == "onnx" and on_gpu:
        raise EmbedderConfigError(
            f"Embedding backend 'onnx' runs on the CPU, but device {device!r} was requested; "
            f"set {ENV_BACKEND}=torch (or auto) for the GPU, or {ENV_DEVICE}=cpu."
        )
    if requested == "auto":
        return "torch" if on_gpu else "onnx"
    return requested


def validate_weights(weights: Mapping[str, Any]) -> dict[str, str]:
    """Check model names and turn path-likes into strings; empty values mean unset."""
    cleaned: dict[str, str] = {}
    for name, path in weights.items():
        if name not in MODEL_NAMES:  # weights are for backbones; a fine-tuned model names its own
            validate_model_name(name)
        if path is None or str(path).strip() == "":
            continue
        cleaned[name] = os.fspath(path)
    return cleaned


def _validate_threads(raw: str, variable: str = ENV_TORCH_THREADS) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise EmbedderConfigError(f"{variable} must be a positive integer, got {raw!r}.")
    return value


def _env(name: str) -> str | None:
    """Environment value, with empty or blank strings treated as unset."""
    value = os.environ.get(name, "").strip()
    return value or None


# Values pushed with configure(); absent keys fall back to env / defaults.
_overrides: dict[str, Any] = {}
_overrides_lock = threading.Lock()


def set_overrides(**values: Any) -> None:
    """Validate and store overrides; ``None`` values leave a setting unchanged."""
    validators = {
        "models_dir": validate_models_dir,
        "weights": validate_weights,
        "device": validate_device,
        "resize_policy": validate_resize_policy,
        "backend": validate_backend,
        "onnx_cache_dir": validate_onnx_cache_dir,
        "mirror_average": validate_mirror_average,
        "query_crop": validate_query_crop,
    }
    # Validate everything before storing anything, so a bad call changes nothing.
    cleaned = {
        key: validators[key](value) for key, value in values.items() if value is not None and key != "active_model"
    }
    if values.get("active_model") is not None:
        # A fine-tuned name is looked up in the models dir of this same call, if it sets one.
        cleaned["active_model"] = validate_model_name(values["active_model"], cleaned.get("models_dir"))
    with _overrides_lock:
        _overrides.update(cleaned)


def clear_overrides() -> None:
    with _overrides_lock:
        _overrides.clear()


def current_settings() -> EmbeddingSettings:
    """Resolve overrides, environment variables and defaults into settings."""
    with _overrides_lock:
        overrides = dict(_overrides)
    models_dir = resolved_models_dir()
    active_model = overrides.get("active_model") or validate_model_name(
        _env(ENV_MODEL) or DEFAULT_MODEL, models_dir
    )
    device = overrides.get("device") or validate_device(_env(ENV_DEVICE) or "auto")
    resize_policy = overrides.get("resize_policy") or validate_resize_policy(
        _env(ENV_RESIZE_POLICY) or DEFAULT_RESIZE_POLICY
    )
    threads_raw = _env(ENV_TORCH_THREADS)
    onnx_threads_raw = _env(ENV_ONNX_THREADS)
    backend = overrides.get("backend") or validate_backend(_env(ENV_BACKEND) or "auto")
    onnx_cache_dir = overrides.get("onnx_cache_dir")
    if onnx_cache_dir is None:
        env_cache = _env(ENV_ONNX_CACHE_DIR)
        onnx_cache_dir = Path(env_cache).expanduser() if env_cache else DEFAULT_ONNX_CACHE_DIR
    mirror_average = overrides.get("mirror_average") or validate_mirror_average(_env(ENV_MIRROR_AVERAGE) or "model")
    query_crop = overrides.get("query_crop") or validate_query_crop(_env(ENV_QUERY_CROP) or "model")
    return EmbeddingSettings(
        active_model=active_model,
        weights=dict(overrides.get("weights", {})),
        device=device,
        resize_policy=resize_policy,
        num_threads=_validate_threads(threads_raw) if threads_raw else None,
        onnx_threads=_validate_threads(onnx_threads_raw, ENV_ONNX_THREADS) if onnx_threads_raw else None,
        models_dir=models_dir,
        backend=backend,
        onnx_cache_dir=onnx_cache_dir,
        mirror_average=mirror_average,
        query_crop=query_crop,
    )


def model_metadata(name: str, models_dir: Path | None = None) -> dict:
    """A fine-tuned model's metadata.json as a dict ({} for a backbone or an unreadable file);
    torch-free, for pages that list models."""
    folder = model_folder(name, models_dir)
    if folder is None:
        return {}
    try:
        return json.loads((folder / FINETUNED_METADATA).read_text())
    except (OSError, ValueError):
        return {}


MODEL_CARD = "MODEL_CARD.md"


def model_card_path(name: str, models_dir: Path | None = None) -> Path | None:
    folder = model_folder(name, models_dir)
    return folder / MODEL_CARD if folder is not None and (folder / MODEL_CARD).is_file() else None
