"""Shared helpers for the embedding tests: synthetic pictures and a config reset.

Test modules import ``clean_embedding_config`` so that pytest uses it as an
autouse fixture there (this package has no conftest of its own).
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw

from visualsearch.embedding import reset_configuration

# The backend the suite embeds with (config/settings/test.py explains why torch);
# VISUALSEARCH_TEST_BACKEND=onnx runs the whole suite on ONNX Runtime instead.
SUITE_BACKEND = os.environ.get("VISUALSEARCH_TEST_BACKEND", "torch")


def isolate_embedding_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VISUALSEARCH_* variable of the developer's shell leaks into a test, except the
    suite's backend."""
    for name in list(os.environ):
        if name.startswith("VISUALSEARCH_") and name != "VISUALSEARCH_TEST_BACKEND":
            monkeypatch.delenv(name)
    monkeypatch.setenv("VISUALSEARCH_BACKEND", SUITE_BACKEND)


@pytest.fixture(autouse=True)
def clean_embedding_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test starts from defaults: no VISUALSEARCH_* env vars, no configure(), and an
    empty models directory (so fine-tuned models trained in this checkout's var/models do
    not show up in ``available_models()``)."""
    isolate_embedding_env(monkeypatch)
    monkeypatch.setenv("VISUALSEARCH_MODELS_DIR", str(tmp_path_factory.mktemp("no_models")))
    reset_configuration()
    yield
    reset_configuration()


def picture(seed: int, size: tuple[int, int] = (224, 224)) -> Image.Image:
    """A deterministic 'product photo': coloured shapes on a white background."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.uniform(0, width * 0.7), rng.uniform(0, height * 0.7)
        x1, y1 = x0 + rng.uniform(width * 0.15, width * 0.5), y0 + rng.uniform(height * 0.15, height * 0.5)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0), width=max(1, width // 60))
    return image


def jpeg_roundtrip(image: Image.Image, quality: int = 70) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    decoded = Image.open(buffer)
    decoded.load()
    return decoded


def with_exif_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """Store ``upright`` the way a camera would with the given EXIF orientation.

    Saved as PNG (lossless) so the decoded pixels can be compared exactly.
    """
    stored_as = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,  # the viewer rotates 90 degrees clockwise back
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright.transpose(stored_as)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif)
    buffer.seek(0)
    return Image.open(buffer)
