"""Public entry points: configure(), load_embedder(), available_models().

torch is imported only inside ``load_embedder`` so that importing this package
(e.g. from Django settings or URL modules) stays cheap.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .categories import load_category_head
from .config import (
    MODEL_NAMES,
    EmbeddingSettings,
    clear_overrides,
    current_settings,
    finetuned_models,
    is_finetuned,
    resolve_backend,
    set_overrides,
    validate_backend,
    validate_model_name,
)

if TYPE_CHECKING:
    from torch import nn

    from .backbones import BackboneSpec
    from .embedder import Embedder
    from .onnx_backend import OnnxRunner

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, str], Embedder] = {}
# One lock for lookups and loads: a model is loaded once even when several
# threads ask for it at the same time (loading a second copy would waste RAM).
_cache_lock = threading.Lock()


def available_models() -> list[str]:
    """Names accepted by ``load_embedder()``: the backbones, then the fine-tuned models found
    in the models directory (``var/models/<name>/metadata.json``, see ``finetuned.py``)."""
    return list(MODEL_NAMES) + finetuned_models()


def configure(
    *,
    active_model: str | None = None,
    weights: dict[str, str] | None = None,
    device: str | None = None,
    resize_policy: str | None = None,
    models_dir: str | None = None,
    backend: str | None = None,
    onnx_cache_dir: str | None = None,
    mirror_average: str | None = None,
    query_crop: str | None = None,
) -> None:
    """Push settings in (the Django app calls this at startup).

    ``None`` leaves a setting as it is. ``weights`` replaces the configured
    {model name: local state_dict path} mapping; models absent from it fall
    back to ``VISUALSEARCH_<NAME>_WEIGHTS``. ``device`` is ``"auto"``, ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``. Invalid values raise ``EmbedderConfigError``
    and change nothing. ``models_dir`` is where fine-tuned models are looked up
    (default ``VISUALSEARCH_MODELS_DIR``, else ``var/models``). ``backend`` is ``"auto"``
    (ONNX Runtime on the CPU, torch on CUDA), ``"torch"`` or ``"onnx"``; ``onnx_cache_dir``
    holds the exported graphs (default ``VISUALSEARCH_ONNX_CACHE_DIR``, else
    ``var/cache/onnx``). ``mirror_average`` is ``"model"`` (as each model's metadata says),
    ``"on"`` or ``"off"`` (see ``config.MIRROR_AVERAGE_MODES``); ``query_crop`` is ``"model"`` or
    ``"off"`` (``config.QUERY_CROP_MODES``). Any successful call empties the embedder cache, so the
    next ``load_embedder()`` uses the new settings.
    """
    set_overrides(
        active_model=active_model,
        weights=weights,
        device=device,
        resize_policy=resize_policy,
        models_dir=models_dir,
        backend=backend,
        onnx_cache_dir=onnx_cache_dir,
        mirror_average=mirror_average,
        query_crop=query_crop,
    )
    clear_cache()


def reset_configuration() -> None:
    """Forget everything set with ``configure()`` (back to env vars / defaults)."""
    clear_overrides()
    clear_cache()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def load_embedder(name: str | None = None, *, backend: str | None = None) -> Embedder:
    """The cached ``Embedder`` for ``name`` (default: the active model), loading it once.

    ``backend`` overrides the configured one for this call (benchmarks compare both);
    ``embedder.backend`` says which one runs, after any fallback to torch.
    """
    settings = current_settings()
    name = validate_model_name(name or settings.active_model, settings.models_dir)
    requested = validate_backend(backend) if backend is not None else settings.backend
    with _cache_lock:
        embedder = _cache.get((name, requested))
        if embedder is None:
            embedder = _build_embedder(name, settings, requested)
            _cache[(name, requested)] = embedder
    return embedder


def _onnx_runner(name: str, spec: BackboneSpec, model: nn.Module, settings: EmbeddingSettings) -> OnnxRunner | None:
    """The ONNX Runtime runner for ``model``, or None (logged) when it cannot be had: the
    torch path is slower but computes the same vectors, so a failed export must not stop
    search or indexing."""
    try:
        # Here: onnxruntime loads only in processes that embed (like torch above).
        from .onnx_backend import onnx_runner_load, runner_threads

        return onnx_runner_load(
            model, name=name, input_size=spec.input_size, cache_dir=settings.onnx_cache_dir,
            threads=runner_threads(settings),
        )
    except Exception as exc:  # noqa: BLE001 - an export or runtime failure of any kind
        logger.warning("ONNX Runtime backend unavailable for %s (%s: %s); falling back to torch.",
                       name, type(exc).__name__, exc)
        return None


def _build_embedder(name: str, settings: EmbeddingSettings, requested_backend: str) -> Embedder:
    import torch

    from .backbones import get_backbone
    from .embedder import Embedder, resolve_device

    if settings.num_threads is not None:
        # Only when asked: torch already defaults to one thread per physical
        # core, which is right for a process that has the machine to itself.
        torch.set_num_threads(settings.num_threads)
    device = resolve_device(settings.device, torch.cuda.is_available)
    backend = resolve_backend(requested_backend, device)
    metadata, folder = None, None
    if is_finetuned(name):
        from .finetuned import build_finetuned, checkpoint_dir, read_metadata

        backbone = read_metadata(settings.models_dir, name)["backbone"]
        spec, model, metadata = build_finetuned(name, settings.models_dir, settings.weights_path(backbone))
        folder = checkpoint_dir(settings.models_dir, name)
    else:
        spec = get_backbone(name)
        model = spec.build(settings.weights_path(name))
    # Exported before the Embedder moves the module (channels_last, a device).
    runner = _onnx_runner(name, spec, model, settings) if backend == "onnx" else None
    embedder = Embedder(
        spec, model, device=device, resize_policy=settings.resize_policy, runner=runner,
        mirror_average=settings.mirrors(metadata), query_crop=settings.query_crop_share(metadata),
    )
    if folder is not None:
        embedder.metadata = metadata
        embedder.category_head = load_category_head(folder)
    return embedder


__all__ = [
    "available_models",
    "clear_cache",
    "configure",
    "load_embedder",
    "reset_configuration",
]
