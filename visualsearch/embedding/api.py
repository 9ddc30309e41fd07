"""Public entry points: configure(), load_embedder(), available_models().

torch is imported only inside ``load_embedder`` so that importing this package
(e.g. from Django settings or URL modules) stays cheap.
"""

from __future__ import annotations

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
    set_overrides,
    validate_model_name,
)

if TYPE_CHECKING:
    from .embedder import Embedder

_cache: dict[str, Embedder] = {}
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
) -> None:
    """Push settings in (the Django app calls this at startup).

    ``None`` leaves a setting as it is. ``weights`` replaces the configured
    {model name: local state_dict path} mapping; models absent from it fall
    back to ``VISUALSEARCH_<NAME>_WEIGHTS``. ``device`` is ``"auto"``, ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``. Invalid values raise ``EmbedderConfigError``
    and change nothing. ``models_dir`` is where fine-tuned models are looked up
    (default ``VISUALSEARCH_MODELS_DIR``, else ``var/models``). Any successful call empties the embedder cache, so the
    next ``load_embedder()`` uses the new settings.
    """
    set_overrides(
        active_model=active_model,
        weights=weights,
        device=device,
        resize_policy=resize_policy,
        models_dir=models_dir,
    )
    clear_cache()


def reset_configuration() -> None:
    """Forget everything set with ``configure()`` (back to env vars / defaults)."""
    clear_overrides()
    clear_cache()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def load_embedder(name: str | None = None) -> Embedder:
    """The cached ``Embedder`` for ``name`` (default: the active model), loading it once."""
    settings = current_settings()
    name = validate_model_name(name or settings.active_model, settings.models_dir)
    with _cache_lock:
        embedder = _cache.get(name)
        if embedder is None:
            embedder = _build_embedder(name, settings)
            _cache[name] = embedder
    return embedder


def _build_embedder(name: str, settings: EmbeddingSettings) -> Embedder:
    import torch

    from .backbones import get_backbone
    from .embedder import Embedder, resolve_device

    if settings.num_threads is not None:
        # Only when asked: torch already defaults to one thread per physical
        # core, which is right for a process that has the machine to itself.
        torch.set_num_threads(settings.num_threads)
    device = resolve_device(settings.device, torch.cuda.is_available)
    if is_finetuned(name):
        from .finetuned import build_finetuned, checkpoint_dir, read_metadata

        backbone = read_metadata(settings.models_dir, name)["backbone"]
        spec, model, metadata = build_finetuned(name, settings.models_dir, settings.weights_path(backbone))
        embedder = Embedder(spec, model, device=device, resize_policy=settings.resize_policy)
        embedder.metadata = metadata
        embedder.category_head = load_category_head(checkpoint_dir(settings.models_dir, name))
        return embedder
    spec = get_backbone(name)
    model = spec.build(settings.weights_path(name))
    return Embedder(spec, model, device=device, resize_policy=settings.resize_policy)


__all__ = [
    "available_models",
    "clear_cache",
    "configure",
    "load_embedder",
    "reset_configuration",
]
