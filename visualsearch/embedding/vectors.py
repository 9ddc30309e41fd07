"""The embedding's output contract, shared by the backends: float32 rows of unit L2 norm."""

from __future__ import annotations

import numpy as np


def unit_rows(values: np.ndarray) -> np.ndarray:
    """``values`` with each row scaled to unit L2 norm by F.normalize's formula (eps 1e-12),
    so that the backends agree on a zero row too."""
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
