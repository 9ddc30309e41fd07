"""A category classifier on a model's embedding (numpy only, no torch, no Django): a softmax
over one hidden ReLU layer (v10's), or directly over the embedding (earlier models').

Trained by the lab (``lab/training/categories.py``) on the catalogue's labels (the
articleType of each training product's photo and its consumer-like views) and on the
training side of the consumer photos through the label mapping; saved beside the model as
``categories.npz``. Serving uses it to guess what a shopper photographed ("Looks like:
Dresses"); visual search maps the labels onto the catalogue's own categories.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CATEGORIES_FILE = "categories.npz"


@dataclass(frozen=True)
class CategoryHead:
    labels: tuple[str, ...]
    weight: np.ndarray  # (classes, hidden) float32; (classes, dim) without a hidden layer
    bias: np.ndarray  # (classes,) float32
    # Calibration and decision settings chosen on the training side's validation split
    # (the lab writes them with the weights): the softmax temperature, and the probability
    # above which a search is restricted to the guessed category.
    temperature: float = 1.0
    auto_threshold: float = 0.5
    info: dict = field(default_factory=dict)
    # The hidden ReLU layer: (hidden, dim) and (hidden,); None for a linear head.
    hidden_weight: np.ndarray | None = None
    hidden_bias: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int((self.weight if self.hidden_weight is None else self.hidden_weight).shape[1])

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, classes) softmax probabilities for (n, dim) unit vectors."""
        x = np.asarray(vectors, dtype=np.float32)
        if self.hidden_weight is not None:
            x = np.maximum(x @ self.hidden_weight.T + self.hidden_bias, 0.0)
        logits = (x @ self.weight.T + self.bias) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def top(self, vector: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` likeliest labels of one vector, most likely first."""
        probs = self.probabilities(np.asarray(vector, dtype=np.float32)[None, :])[0]
        order = np.argsort(-probs, kind="stable")[:k]
        return [(self.labels[i], float(probs[i])) for i in order]


def save_category_head(folder: Path, head: CategoryHead) -> Path:
    path = Path(folder) / CATEGORIES_FILE
    # Matrices float16 (a few hundred KB; float16 changes no decision, tested), vectors float32.
    hidden = {} if head.hidden_weight is None else {
        "hidden_weight": head.hidden_weight.astype(np.float16), "hidden_bias": head.hidden_bias.astype(np.float32)}
    np.savez(
        path,
        labels=np.array(head.labels),
        weight=head.weight.astype(np.float16),
        bias=head.bias.astype(np.float32),
        settings=np.array(json.dumps({"temperature": head.temperature, "auto_threshold": head.auto_threshold, **head.info})),
        **hidden,
    )
    return path


def load_category_head(folder: Path) -> CategoryHead | None:
    """The model folder's classifier, or None when it has none."""
    path = Path(folder) / CATEGORIES_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        settings = json.loads(str(data["settings"]))
        return CategoryHead(
            labels=tuple(str(label) for label in data["labels"]),
            weight=data["weight"].astype(np.float32),
            bias=data["bias"].astype(np.float32),
            temperature=float(settings.pop("temperature", 1.0)),
            auto_threshold=float(settings.pop("auto_threshold", 0.5)),
            info=settings,
            hidden_weight=data["hidden_weight"].astype(np.float32) if "hidden_weight" in data else None,
            hidden_bias=data["hidden_bias"].astype(np.float32) if "hidden_bias" in data else None,
        )
