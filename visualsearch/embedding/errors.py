"""Exceptions raised by the embedding package."""

from __future__ import annotations


class EmbedderConfigError(RuntimeError):
    """The embedding configuration cannot produce a working embedder.

    Raised for an unknown model name, an invalid device or resize policy, and
    for weights that are not configured or cannot be read. Weights are never
    downloaded, so a missing file is always a configuration problem.
    """
