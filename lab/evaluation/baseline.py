"""The white-box baseline: a colour histogram plus HOG, in numpy (no Django, no torch).

The hand-made features of the street-to-shop literature before CNN embeddings: a joint
HSV colour histogram (what colour) and a histogram of oriented gradients (what shape).
Each part is scaled to unit length and the two are concatenated and scaled again, so
the cosine of two feature vectors is the mean of the colour and the shape cosines.

Sizes: HSV 8 x 4 x 4 = 128 bins; HOG on a 128 x 128 grey image with 16-pixel cells,
9 unsigned orientations and 2 x 2-cell blocks (stride one cell, L2-Hys): 7 x 7 x 36 =
1,764 values. 1,892 dimensions in all: under halfvec's 4,000-dimension HNSW limit and
vector's 2,000, so the baseline goes through the same pgvector index as the CNN.
Measured on the 2-core box: about 6 ms per 224 x 224 image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

HSV_BINS = (8, 4, 4)
HOG_SIZE = 128
HOG_CELL = 16
HOG_ORIENTATIONS = 9
HOG_BLOCK = 2
HOG_CLIP = 0.2  # L2-Hys clipping, as in Dalal & Triggs
FEATURE_VERSION = 1


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def colour_histogram(image: Image.Image) -> np.ndarray:
    """Joint HSV histogram of the image (at 64 x 64), square-rooted and L2-normalised.

    The square root (Hellinger) keeps the large white background of catalogue photos
    from dominating the cosine.
    """
    hsv = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR).convert("HSV"), dtype=np.int32)
    h = hsv[..., 0] * HSV_BINS[0] // 256
    s = hsv[..., 1] * HSV_BINS[1] // 256
    v = hsv[..., 2] * HSV_BINS[2] // 256
    index = (h * HSV_BINS[1] + s) * HSV_BINS[2] + v
    hist = np.bincount(index.ravel(), minlength=int(np.prod(HSV_BINS))).astype(np.float32)
    return _unit(np.sqrt(hist / hist.sum()))


def hog(image: Image.Image) -> np.ndarray:
    """Histogram of oriented gradients of the grey image resized to 128 x 128."""
    grey = np.asarray(image.convert("L").resize((HOG_SIZE, HOG_SIZE), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    gy[1:-1, :] = grey[2:, :] - grey[:-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0
    # Linear vote between the two nearest orientation bins.
    position = angle / (180.0 / HOG_ORIENTATIONS) - 0.5
    low = np.floor(position).astype(np.int64)
    weight_high = position - low
    low %= HOG_ORIENTATIONS
    high = (low + 1) % HOG_ORIENTATIONS
    cells = HOG_SIZE // HOG_CELL
    cell_index = (np.arange(HOG_SIZE) // HOG_CELL)
    cell_of_pixel = cell_index[:, None] * cells + cell_index[None, :]
    hist = np.zeros(cells * cells * HOG_ORIENTATIONS, dtype=np.float64)
    np.add.at(hist, (cell_of_pixel * HOG_ORIENTATIONS + low).ravel(), (magnitude * (1 - weight_high)).ravel())
    np.add.at(hist, (cell_of_pixel * HOG_ORIENTATIONS + high).ravel(), (magnitude * weight_high).ravel())
    hist = hist.reshape(cells, cells, HOG_ORIENTATIONS)
    blocks = []
    for by in range(cells - HOG_BLOCK + 1):
        for bx in range(cells - HOG_BLOCK + 1):
            block = hist[by : by + HOG_BLOCK, bx : bx + HOG_BLOCK].ravel()
            block = block / np.sqrt(np.sum(block**2) + 1e-6)
            block = np.minimum(block, HOG_CLIP)
            blocks.append(block / np.sqrt(np.sum(block**2) + 1e-6))
    return _unit(np.concatenate(blocks).astype(np.float32))


def feature_dim() -> int:
    blocks = (HOG_SIZE // HOG_CELL - HOG_BLOCK + 1) ** 2
    return int(np.prod(HSV_BINS)) + blocks * HOG_BLOCK * HOG_BLOCK * HOG_ORIENTATIONS


def baseline_features(image: Image.Image) -> np.ndarray:
    """Colour histogram and HOG, each of unit length, concatenated; unit length overall."""
    rgb = ImageOps.exif_transpose(image).convert("RGB")
    return _unit(np.concatenate([colour_histogram(rgb), hog(rgb)]).astype(np.float32))


def baseline_embed(images) -> np.ndarray:
    """(n, feature_dim()) float32 rows of unit length, like ``Embedder.embed``."""
    if not images:
        return np.zeros((0, feature_dim()), dtype=np.float32)
    return np.stack([baseline_features(img) for img in images]).astype(np.float32)
