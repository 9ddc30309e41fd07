"""ONNX Runtime inference on the CPU for the embedding models.

The graph is exported from the very torch module the ``Embedder`` holds (an ImageNet
backbone, or a fine-tuned model's trunk -> tail -> head), so there is one source of truth
for the weights; nothing is downloaded. Exports are cached on disk::

    <cache dir>/<model name>-<key>.onnx

where ``key`` is a SHA-256 of every tensor of the module's ``state_dict`` (names, dtypes,
shapes, bytes), the module's structure (``repr``), the input size and the export settings
below: retrained weights or a changed export give a new file, never a stale graph. A file
is written to a temporary name in the same folder and renamed into place, so a reader
never sees half a graph, and two processes exporting at once both end up with a whole one.

Each export is checked against torch on a random batch before it is published, so a graph
that computes something else never reaches the cache (the caller falls back to torch).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from .vectors import unit_rows

if TYPE_CHECKING:
    from .config import EmbeddingSettings

logger = logging.getLogger(__name__)

# Part of the cache key: bump it when the export below changes in a way the other parts of
# the key do not show.
EXPORT_FORMAT = 1
# onnx 1.17 (pinned for mediapipe's protobuf 4) reads up to opset 22; torch's TorchScript
# exporter is mature up to 17-18, and opset 17 has every operator these convnets use.
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "features"
# The trace's example batch; the batch axis is exported as dynamic, so any batch runs.
EXAMPLE_BATCH = 2
# An export must reproduce torch on a random batch at least this closely (cosine per row)
# before it is cached: the contract is >= 0.9999 on real images (tests check it).
EXPORT_CHECK_MIN_COSINE = 0.9999
# ONNX Runtime's intra-op threads spin-wait for work after each operator by default. Off:
# in the catalogue pipeline they share the cores with the decode/preprocess threads, and a
# spinning thread takes the CPU those need. See docs/benchmarks.md, "Inference backends".
ALLOW_SPINNING = False

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class OnnxExportError(RuntimeError):
    """The module could not be exported or its graph does not agree with torch."""


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def export_key(model: nn.Module, input_size: int) -> str:
    """SHA-256 (hex) of the weights and the export settings; names the cached graph."""
    digest = hashlib.sha256()
    settings = f"format={EXPORT_FORMAT};opset={OPSET};torch={torch.__version__};input={input_size}"
    digest.update(settings.encode())
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"\n{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def runner_threads(settings: EmbeddingSettings) -> int:
    """ONNX Runtime's intra-op threads: ``VISUALSEARCH_ONNX_THREADS``, else the torch thread
    setting, else torch's own count (one per physical core)."""
    return settings.onnx_threads or settings.num_threads or torch.get_num_threads()


def cache_path(cache_dir: Path, name: str, key: str) -> Path:
    return Path(cache_dir) / f"{_UNSAFE.sub('_', name)}-{key[:24]}.onnx"


def session_create(model: Path | bytes, threads: int) -> ort.InferenceSession:
    """A CPU session with every graph optimisation and ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if ALLOW_SPINNING else "0")
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise here
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _export_bytes(model: nn.Module, input_size: int) -> bytes:
    example = torch.zeros(EXAMPLE_BATCH, 3, input_size, input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation and constant-folding limits.
        warnings.simplefilter("ignore")
        # dynamo=False: the torch.export-based exporter (torch's default since 2.9) needs
        # onnxscript, which is not installed; the TorchScript one handles these convnets.
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return buffer.getvalue()


def _check_against_torch(model: nn.Module, graph: bytes, input_size: int) -> float:
    generator = torch.Generator().manual_seed(0)
    # Three rows, not EXAMPLE_BATCH: also proves the batch axis is dynamic.
    probe = torch.randn(EXAMPLE_BATCH + 1, 3, input_size, input_size, generator=generator)
    with torch.inference_mode():
        expected = model(probe).float().numpy()
    got = session_create(graph, threads=1).run([OUTPUT_NAME], {INPUT_NAME: probe.numpy()})[0]
    if got.shape != expected.shape:
        raise OnnxExportError(f"the exported graph returns shape {got.shape}, torch {expected.shape}")
    return float(np.min(np.sum(unit_rows(got) * unit_rows(expected), axis=1)))


def onnx_export(model: nn.Module, path: Path, input_size: int) -> Path:
    """Export ``model`` (eval mode, CPU, float32) to ``path`` atomically, after checking it."""
    try:
        graph = _export_bytes(model, input_size)
    except Exception as exc:  # an operator the exporter does not know, a tracing failure ...
        raise OnnxExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
    cosine = _check_against_torch(model, graph, input_size)
    if not cosine >= EXPORT_CHECK_MIN_COSINE:
        raise OnnxExportError(f"the exported graph disagrees with torch (min cosine {cosine:.6f} on a random batch)")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(graph)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@dataclass
class OnnxRunner:
    """A loaded graph: (N, 3, S, S) float32 -> (N, dim) features (not normalised).

    ``InferenceSession.run`` is thread-safe, like the torch path.
    """

    session: ort.InferenceSession
    path: Path
    threads: int

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]


def onnx_runner_load(model: nn.Module, *, name: str, input_size: int, cache_dir: Path, threads: int) -> OnnxRunner:
    """The runner for ``model``: from the cache, else exported (seconds) and cached first.

    Raises ``OnnxExportError`` (or ONNX Runtime's own errors) when that fails.
    """
    model = model.eval()
    path = cache_path(cache_dir, name, export_key(model, input_size))
    if path.is_file():
        try:
            return OnnxRunner(session_create(path, threads), path, threads)
        except Exception as exc:  # noqa: BLE001 - unreadable file: export it again
            logger.warning("Cached ONNX graph %s cannot be loaded (%s); exporting it again.", path, exc)
    started = time.perf_counter()
    onnx_export(model, path, input_size)
    logger.info("Exported %s to ONNX in %.1f s: %s", name, time.perf_counter() - started, path)
    return OnnxRunner(session_create(path, threads), path, threads)
