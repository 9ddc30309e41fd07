"""Which pixels of a flat-lay photo are garments: a small learned segmenter (torch; no Django).

The colour rule of ``visualsearch.garments`` (pixels far from the border's colours) loses
garments on patterned surfaces and garments close to the surface's colour. This network
was trained on composites of catalogue garments cut out of their studio white and pasted
onto real surfaces (``lab/training/segmenter.py``, ``make train-segmenter``); its weights
ship in the repository (``garment_models/<name>/weights.pt``, float16, under 1 MB, with a
model card), so nothing is downloaded.

Input: the locator's own thumbnail (``garments.ITEM_SIDE`` on the long side, box-blurred),
as uint8 RGB. Output: the probability that each pixel belongs to a garment, float32, same
height and width. Any size works: the network is fully convolutional and the input is
padded to a multiple of ``STRIDE``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent / "garment_models"
SHIPPED = "flatlay-unet-v1"
# "off" uses the colour rule only (the fallback, also used where the weights are absent);
# another name loads garment_models/<name>.
ENV_SEGMENTER = "VISUALSEARCH_FLATLAY_SEGMENTER"
# Channels per level of the U-Net; three poolings, so input sides are padded to a multiple of 8.
WIDTHS = (16, 32, 48, 64)
STRIDE = 8
# Pixels are scaled to about zero mean and unit spread before the first convolution.
PIXEL_MEAN, PIXEL_SCALE = 0.45, 0.25


def network():
    """A fresh, untrained U-Net (encoder WIDTHS, two 3x3 conv + BatchNorm + ReLU per level,
    max-pooling down, bilinear upsampling with skip connections, one logit per pixel)."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    class FlatLayUNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w0, w1, w2, w3 = WIDTHS
            self.down = nn.ModuleList([block(3, w0), block(w0, w1), block(w1, w2), block(w2, w3)])
            self.up = nn.ModuleList([block(w3 + w2, w2), block(w2 + w1, w1), block(w1 + w0, w0)])
            self.head = nn.Conv2d(w0, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for n, level in enumerate(self.down):
                if n:
                    x = nn.functional.max_pool2d(x, 2)
                x = level(x)
                skips.append(x)
            for level, skip in zip(self.up, reversed(skips[:-1]), strict=True):
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = level(torch.cat([x, skip], dim=1))
            return self.head(x)[:, 0]

    return FlatLayUNet()


def to_input(pixels: np.ndarray):
    """uint8 RGB pixels (h, w, 3), or a batch (n, h, w, 3), as the network's float tensor
    (n, 3, H, W), each side padded (edge pixels repeated) to a multiple of STRIDE."""
    import torch

    batch = pixels[None] if pixels.ndim == 3 else pixels
    _, h, w, _ = batch.shape
    pad_h, pad_w = -h % STRIDE, -w % STRIDE
    if pad_h or pad_w:
        batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    x = torch.from_numpy(np.array(batch, dtype=np.float32)).permute(0, 3, 1, 2)  # a copy: Pillow's arrays are read-only
    return (x / 255.0 - PIXEL_MEAN) / PIXEL_SCALE


class Segmenter:
    """A trained network, loaded on first use and kept (~1 MB; torch's own import is the cost)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._module = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.directory.name

    def _load(self):
        with self._lock:
            if self._module is None:
                import torch

                module = network()
                state = torch.load(self.directory / "weights.pt", map_location="cpu", weights_only=True)
                module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
                self._module = module.eval()
        return self._module

    def foreground(self, pixels: np.ndarray) -> np.ndarray:
        """The probability (float32, h x w) that each pixel of ``pixels`` (uint8 RGB, h x w x 3)
        belongs to a garment."""
        import torch

        module = self._load()
        h, w = pixels.shape[:2]
        with torch.inference_mode():
            logits = module(to_input(pixels))
        return torch.sigmoid(logits[0, :h, :w]).numpy()  # float32, as the network computes


_loaded: dict[Path, Segmenter] = {}
_loaded_lock = threading.Lock()
_missing_reported: set[Path] = set()


def segmenter_active() -> Segmenter | None:
    """The segmenter the locator uses: ``$VISUALSEARCH_FLATLAY_SEGMENTER`` (a name under
    garment_models, a directory holding weights.pt, or "off"), else SHIPPED; None when off or its weights are absent (then
    the colour rule finds the items)."""
    choice = os.environ.get(ENV_SEGMENTER, "").strip() or SHIPPED
    if choice.lower() == "off":
        return None
    # A bare name is one of ours; a path is a directory trained elsewhere (make train-segmenter).
    directory = Path(choice) if os.sep in choice else MODELS_DIR / choice
    loaded = _loaded.get(directory)
    if loaded is not None:  # asked per photo and per item: no file check once it is known
        return loaded
    if not (directory / "weights.pt").is_file():
        if directory not in _missing_reported:  # once per process: an operator should know, a log should not flood
            _missing_reported.add(directory)
            logger.warning("No segmenter weights at %s: items lying flat are found by the colour rule.", directory / "weights.pt")
        return None
    with _loaded_lock:
        if directory not in _loaded:
            _loaded[directory] = Segmenter(directory)
        return _loaded[directory]
