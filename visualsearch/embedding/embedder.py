"""The ``Embedder``: PIL images (or pre-made tensors) in, unit-length vectors out."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .backbones import BackboneSpec
from .categories import CategoryHead
from .config import DEFAULT_BATCH_SIZE
from .errors import EmbedderConfigError
from .preprocess import ImagePreprocessor, centre_crop, to_rgb
from .vectors import unit_rows

if TYPE_CHECKING:
    from .onnx_backend import OnnxRunner

# channels_last lets oneDNN pick faster convolution kernels (1.3-1.8x on the CPU,
# docs/embedding.md, "CPU throughput"); it is also the layout cuDNN prefers for convnets.
MEMORY_FORMAT = torch.channels_last

_T = TypeVar("_T")


def resolve_device(requested: str, cuda_available: Callable[[], bool]) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``; pinned values are checked."""
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise EmbedderConfigError(
            f"Embedding device {requested!r} was requested but CUDA is not available; "
            f"use 'auto' or 'cpu'."
        )
    return requested


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class Embedder:
    """A loaded backbone plus its preprocessing. Thread-safe for inference.

    Create through ``load_embedder()``, which caches one instance per model. With a
    ``runner`` (ONNX Runtime, ``onnx_backend.py``) the forward pass runs there; the torch
    module stays loaded for training code and ``project_base_vectors``.
    """

    def __init__(
        self,
        spec: BackboneSpec,
        model: nn.Module,
        device: str,
        resize_policy: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        memory_format: torch.memory_format = MEMORY_FORMAT,
        runner: OnnxRunner | None = None,
        mirror_average: bool = False,
        query_crop: float | None = None,
    ) -> None:
        self.name: str = spec.name
        self.dim: int = spec.dim
        self.device: str = device
        self.resize_policy: str = resize_policy
        self.batch_size: int = batch_size
        self.input_size: int = spec.input_size
        # A plain picklable object, for DataLoader workers that preprocess.
        self.preprocessor = ImagePreprocessor(
            input_size=spec.input_size,
            mean=spec.mean,
            std=spec.std,
            resize_policy=resize_policy,
            resample=spec.resample,
        )
        self._memory_format = memory_format
        self._model = model.eval().to(device=device, memory_format=memory_format)
        self._runner = runner
        # Each vector the normalised mean of the image's and its mirror image's (config.py,
        # MIRROR_AVERAGE_MODES): one batch of twice the size per call.
        self.mirror_average: bool = mirror_average
        # A query's vector also takes its centre crop of this share of each side
        # (``embed_queries``; config.py, QUERY_CROP_MODES); None: the whole photo only.
        self.query_crop: float | None = query_crop
        # "onnx" or "torch": what embed_tensors runs (after any fallback at load time).
        self.backend: str = "onnx" if runner is not None else "torch"
        # Fine-tuned models (finetuned.py): their metadata.json (backbone, head, split ...).
        self.metadata: dict | None = None
        # ... and, when the lab trained one, its category classifier (categories.py).
        self.category_head: CategoryHead | None = None

    @property
    def cpu_threads(self) -> int:
        """CPU threads the forward pass keeps busy (0 on a GPU): callers size their own
        thread pools to the cores left."""
        if self._runner is not None:
            return self._runner.threads
        return 0 if self.device.startswith("cuda") else torch.get_num_threads()

    def project_base_vectors(self, vectors: np.ndarray) -> np.ndarray | None:
        """This model's vectors computed from its backbone's own (L2-normalised) vectors.

        Only for a fine-tuned model whose backbone was left frozen (the head alone was
        trained): then ``embed(x) == project_base_vectors(load_embedder(backbone).embed(x))``,
        and an evaluation that already has the backbone's vectors needs no second forward
        pass. ``None`` when that does not hold.
        """
        head = getattr(self._model, "head", None)
        if self.metadata is None or head is None or self.metadata.get("train_last_stage") or self.mirror_average:
            return None
        with torch.inference_mode():
            inputs = torch.as_tensor(np.asarray(vectors, dtype=np.float32), device=self.device)
            out = F.normalize(head(inputs).float(), p=2.0, dim=1)
            return out.cpu().numpy().astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return (
            f"Embedder(name={self.name!r}, dim={self.dim}, device={self.device!r}, "
            f"backend={self.backend!r}, resize_policy={self.resize_policy!r}, mirror_average={self.mirror_average}, "
            f"query_crop={self.query_crop})"
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """One PIL image -> normalised float32 tensor (3, H, W) on the CPU."""
        return self.preprocessor(image)

    def embed_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Forward pass only, for batches built from ``preprocess()`` output.

        ``batch`` is (N, 3, H, W) as stacked by a DataLoader; it is run as one
        batch, so size it with the DataLoader. Returns (N, dim) float32 rows of
        unit L2 norm, on the CPU.
        """
        expected = (3, self.input_size, self.input_size)
        if batch.dim() != 4 or tuple(batch.shape[1:]) != expected:
            shape = ", ".join(map(str, expected))
            raise ValueError(f"Expected a batch of shape (N, {shape}), got {tuple(batch.shape)}.")
        if batch.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.mirror_average:
            return self._forward_unit(batch)
        # The mirror of the preprocessed tensor is the preprocessed mirror image (stretching,
        # the centre crop and the scaling commute with a flip; the pad policy's odd pixel of
        # padding moves sides), so the flip costs no second decode.
        n = batch.shape[0]
        both = self._forward_unit(torch.cat([batch, batch.flip(-1)]))
        return unit_rows(both[:n] + both[n:]).astype(np.float32, copy=False)

    def _forward_unit(self, batch: torch.Tensor) -> np.ndarray:
        if self._runner is not None:
            inputs = batch.detach().to("cpu", dtype=torch.float32).contiguous().numpy()
            features = np.asarray(self._runner.run(inputs), dtype=np.float32)
            return unit_rows(features).astype(np.float32, copy=False)
        with torch.inference_mode():
            inputs = batch.to(self.device, dtype=torch.float32, non_blocking=True)
            features = self._model(inputs.contiguous(memory_format=self._memory_format))
            unit = F.normalize(features.float(), p=2.0, dim=1)
            return unit.cpu().numpy().astype(np.float32, copy=False)

    def _batch_size(self, batch_size: int | None) -> int:
        size = self.batch_size if batch_size is None else batch_size
        if size < 1:
            raise ValueError(f"batch_size must be >= 1, got {size}.")
        return size

    def embed(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        """PIL images -> (n, dim) float32 array, each row of unit L2 norm.

        Preprocessing happens one batch at a time, so memory stays bounded by
        ``batch_size`` (default ``self.batch_size``) whatever ``len(images)`` is.
        """
        size = self._batch_size(batch_size)
        parts = [
            self.embed_tensors(torch.stack([self.preprocess(image) for image in chunk]))
            for chunk in _chunks(images, size)
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts, axis=0)

    def embed_queries(
        self, images: Sequence[Image.Image], batch_size: int | None = None, *, whole: Sequence[bool] | None = None,
    ) -> np.ndarray:
        """Shoppers' photos, or regions of them -> (n, dim) float32 unit rows, the vectors a
        search compares with the catalogue's ``embed()`` vectors.

        With a ``query_crop``, each whole photo's row is the normalised sum of its vector and its
        centre crop's, computed in the same batches. ``whole[i]`` False marks a region (a box the
        shopper drew, a garment found in the photo): it is already framed on the garment, and
        is embedded as it is (default: every image is a whole photo). Without a ``query_crop``,
        ``embed(images)``. Catalogue photos are never embedded this way.
        """
        flags = [True] * len(images) if whole is None else [bool(w) for w in whole]
        if len(flags) != len(images):
            raise ValueError(f"whole has {len(flags)} flags for {len(images)} images.")
        if self.query_crop is None or not any(flags):
            return self.embed(images, batch_size)
        size = self._batch_size(batch_size)
        parts = []
        for chunk in _chunks(list(zip(images, flags, strict=True)), max(1, size // 2)):
            upright = [to_rgb(image) for image, _ in chunk]
            crops = [centre_crop(image, self.query_crop) for image, (_, w) in zip(upright, chunk, strict=True) if w]
            vectors = self.embed_tensors(torch.stack([self.preprocess(image) for image in upright + crops]))
            n = len(chunk)
            rows = np.flatnonzero([w for _, w in chunk])
            out = vectors[:n].copy()
            out[rows] = unit_rows(vectors[rows] + vectors[n:])
            parts.append(out.astype(np.float32, copy=False))
        return np.concatenate(parts, axis=0)
