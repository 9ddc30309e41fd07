"""Image embeddings for visual search (pure Python + torch, no Django).

    from visualsearch.embedding import load_embedder
    emb = load_embedder()              # active model, cached per name
    vectors = emb.embed(pil_images)    # (n, emb.dim) float32, rows of unit L2 norm

Importing this package does not import torch; the first ``load_embedder()``
(or access to ``Embedder``) does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import available_models, clear_cache, configure, load_embedder, reset_configuration
from .config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL,
    DEFAULT_RESIZE_POLICY,
    RESIZE_POLICIES,
    EmbeddingSettings,
    current_settings,
    model_metadata,
)
from .errors import EmbedderConfigError

if TYPE_CHECKING:
    from .embedder import Embedder


def __getattr__(name: str) -> Any:
    # Lazy so that "import visualsearch.embedding" stays torch-free.
    if name == "Embedder":
        from .embedder import Embedder

        return Embedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MODEL",
    "DEFAULT_RESIZE_POLICY",
    "RESIZE_POLICIES",
    "Embedder",
    "EmbedderConfigError",
    "EmbeddingSettings",
    "available_models",
    "clear_cache",
    "configure",
    "current_settings",
    "load_embedder",
    "model_metadata",
    "reset_configuration",
]
