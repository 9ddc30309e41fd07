"""On-disk cache of the frozen backbone's output for every training view (no Django).

The expensive part of training on a CPU is the backbone (20-70 images/s on 2 shared cores);
the head trains in seconds. So each view is pushed through the backbone's *trunk* once and
its output stored (float16) in SQLite under ``var/cache/train/<backbone>/<fingerprint>.sqlite3``:

* EfficientNet-Lite0: the 320x7x7 maps before the last stage, so that a run with
  ``--train-last-stage`` can train ``_conv_head`` too, and a frozen run pools them through
  the ImageNet last stage (exactly the 1,280-d features the ImageNet embedder stores);
* other backbones: their pooled features (their last stage is not trainable here).

A view is keyed by what produced its pixels: the file (path, mtime, size, as in the
evaluation cache), the view kind, and for synthetic views the recipe version and seed.
The fingerprint in the file name covers the backbone, its weights, the resize policy, what
preprocessing makes of a fixed probe image, the trunk's output shape and ``FEATURES_VERSION``
(bump it when the trunk/tail split in ``embedding/finetuned.py`` changes): a change that
alters the cached maps starts a fresh cache, an edit that does not keeps it. Work is
committed every 64 images: an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lab import synthetic
from lab.cache import VectorCache, encode_cached, file_key
from visualsearch.embedding import current_settings, load_embedder
from visualsearch.embedding.finetuned import split_backbone
from visualsearch.embedding.config import resolve_backend, validate_backend
from visualsearch.embedding.onnx_backend import OnnxExportError, onnx_runner_load, runner_threads

FEATURES_VERSION = 1
# Kept separate from the evaluation seeds (which start at 0): view k of a training
# product uses seed TRAIN_VIEW_SEED + 1000 * seed + k.
TRAIN_VIEW_SEED = 100_000


@dataclass(frozen=True)
class View:
    """One image to push through the backbone: a file, optionally turned into a synthetic view."""

    key: str
    path: Path
    item_id: str
    synthetic_seed: int | None = None
    edit: str = "consumer"  # with a seed: "consumer" (a phone photo of a catalogue item) or "variant"

    def load(self) -> Image.Image:
        image = Image.open(self.path)
        if self.edit == "thumbnail":
            return synthetic.thumbnail_view(image)
        if self.synthetic_seed is None:
            return image
        if self.edit == "variant":
            return synthetic.photo_variant(image, self.synthetic_seed, self.item_id)
        return synthetic.consumer_view(image.convert("RGB"), self.synthetic_seed, self.item_id)


def file_view(path: Path, item_id: str, kind: str) -> View:
    return View(key=f"{kind}|{file_key(path)}", path=Path(path), item_id=item_id)


def synthetic_view(path: Path, item_id: str, seed: int) -> View:
    prefix = f"synthetic-v{synthetic.SYNTHETIC_VERSION}-s{seed}"
    return View(key=f"{prefix}|{file_key(path)}", path=Path(path), item_id=item_id, synthetic_seed=seed)


def variant_view(path: Path, item_id: str, seed: int) -> View:
    """An edited copy of a photo (``synthetic.photo_variant``)."""
    return View(key=f"variant-v{synthetic.SYNTHETIC_VERSION}-s{seed}|{file_key(path)}", path=Path(path), item_id=item_id,
                synthetic_seed=seed, edit="variant")


def thumbnail_view(path: Path, item_id: str) -> View:
    return View(key=f"thumbnail|{file_key(path)}", path=Path(path), item_id=item_id, edit="thumbnail")


def train_view_seed(seed: int, k: int) -> int:
    return TRAIN_VIEW_SEED + 1000 * seed + k


def _probe_image() -> Image.Image:
    """A fixed 97x131 RGB gradient: odd sizes exercise resizing and the resize policy."""
    y, x = np.mgrid[0:131, 0:97]
    pixels = np.stack([x * 2 % 256, y * 3 % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels)


def _weights_digest(model) -> str:
    digest = hashlib.sha1()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class FeatureStore(VectorCache):
    """A ``VectorCache`` that keeps float16 (half the disk of float32 maps)."""
    DTYPE = np.float16

    def get_many_half(self, keys: Sequence[str]) -> np.ndarray:
        """Rows for ``keys`` in order, float16; every key must be present."""
        rows = self.stored(keys)
        missing = [k for k in keys if k not in rows]
        if missing:
            raise KeyError(f"{len(missing)} views are not in the feature cache {self.path}, e.g. {missing[0]}")
        return np.stack([rows[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float16)

    def missing(self, keys: Sequence[str]) -> list[str]:
        have = {key for (key,) in self._select("key", keys)}
        return [k for k in keys if k not in have]


class TrunkEncoder:
    """The backbone split in trunk and tail (the last ``tail_blocks`` blocks and the last
    stage); ``encode`` runs the trunk on PIL images.

    On the CPU the trunk runs in ONNX Runtime (exported from this very trunk and checked
    against it, as the serving embedder's graph is; ``onnx_backend``): 8.5 against 29.3 ms a
    view with torch on 2 cores (docs/benchmarks.md, "Caching the training views"). Its maps
    agree with torch's to a cosine of 0.9999998, so either fills the same cache. ``backend``
    is the embedding setting's unless given (``VISUALSEARCH_BACKEND``: "auto" = ONNX Runtime on
    the CPU); "torch" keeps torch, and a graph that cannot be exported falls back to it. The
    choice is ``resolve_backend``'s, as for the serving embedder: "onnx" with a CUDA device is
    refused (ONNX Runtime runs on the CPU here), not silently trained on the CPU.
    """
    def __init__(self, backbone: str, device: str | None = None, tail_blocks: int = 0, backend: str | None = None) -> None:
        import torch
        from torch import nn

        embedder = load_embedder(backbone)
        self.backbone = backbone
        self.embedder = embedder
        self.device = device or embedder.device
        trunk, tail = split_backbone(backbone, embedder._model, tail_blocks)
        self.trunk = trunk.eval()
        self.tail = tail.eval()
        with torch.inference_mode():
            probe = torch.zeros(1, 3, embedder.input_size, embedder.input_size, device=embedder.device)
            self.shape: tuple[int, ...] = tuple(self.trunk(probe).shape[1:])
        self.size = int(np.prod(self.shape))
        # What the cached maps depend on, by behaviour rather than by source text (so an edit
        # elsewhere in the embedding package keeps an hour of cached views): the backbone's
        # weights, its input spec, where it is split, and what preprocessing makes of a fixed
        # probe image. Not the backend: both give the same maps (see above).
        digest = hashlib.sha1(f"{backbone}|{embedder.resize_policy}|{FEATURES_VERSION}|{self.shape}".encode())
        digest.update(_weights_digest(embedder._model).encode())
        digest.update(embedder.preprocess(_probe_image()).numpy().tobytes())
        self.fingerprint = digest.hexdigest()[:12]
        self.runner = None
        settings = current_settings()
        requested = validate_backend(backend or settings.backend)
        if resolve_backend(requested, self.device) == "onnx":
            try:
                self.runner = onnx_runner_load(
                    nn.Sequential(self.trunk, nn.Flatten()), name=f"{backbone}-trunk{tail_blocks}",
                    input_size=embedder.input_size, cache_dir=settings.onnx_cache_dir, threads=runner_threads(settings),
                )
            except OnnxExportError:
                if requested == "onnx":
                    raise
        self.backend = "onnx" if self.runner is not None else "torch"

    def encode(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        out = []
        step = self.embedder.batch_size if self.device == "cpu" else 64  # 8: fastest on the CPU
        for start in range(0, len(images), step):
            batch = torch.stack([self.embedder.preprocess(image) for image in images[start : start + step]])
            if self.runner is not None:
                out.append(np.asarray(self.runner.run(batch.numpy()), dtype=np.float32))
                continue
            with torch.inference_mode():
                inputs = batch.to(self.embedder.device).contiguous(memory_format=torch.channels_last)
                out.append(self.trunk(inputs).float().reshape(len(batch), -1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.size), dtype=np.float32)

    def pool(self, maps: np.ndarray, batch: int = 512) -> np.ndarray:
        """Frozen last stage on cached trunk outputs -> L2-normalised backbone vectors (float32)."""
        import torch
        import torch.nn.functional as F

        out = []
        with torch.inference_mode():
            for start in range(0, len(maps), batch):
                x = torch.as_tensor(np.asarray(maps[start : start + batch], dtype=np.float32)).reshape(-1, *self.shape)
                out.append(F.normalize(self.tail(x.to(self.embedder.device)).float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embedder.dim), dtype=np.float32)


def store_open(cache_dir: Path, encoder: TrunkEncoder) -> FeatureStore:
    return FeatureStore(Path(cache_dir) / encoder.backbone / f"{encoder.fingerprint}.sqlite3")


def features_ensure(
    store: FeatureStore,
    encoder: TrunkEncoder,
    views: Sequence[View],
    progress: Callable[[int], None] | None = None,
    chunk: int = 1024,
) -> int:
    """Compute and store every view not cached yet; returns how many were computed.

    Images are decoded (and synthetic views made) in a background thread one batch ahead
    of the forward pass (``encode_cached``).
    """
    todo_keys = set(store.missing([v.key for v in views]))
    done = len(views) - len(todo_keys)
    if progress and done:
        progress(done)
    todo = [v for v in views if v.key in todo_keys]
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        encode_cached(store, [v.key for v in part], [v.load for v in part], encoder.encode, encoder.size, progress=progress)
    return len(todo)
