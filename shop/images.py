"""Checking image bytes before they enter the catalogue."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Catalogue photos are at most a few megapixels; anything far beyond is a mistake or a
# decompression bomb. Pillow's own warning threshold is ~89 MP.
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 20 * 1024 * 1024
FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why, for the user."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


def image_check(data: bytes) -> CheckedImage:
    """Decode ``data`` fully and return what we need to store it, or raise ImageRejected."""
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejected(f"The file is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            width, height = probe.size
            if fmt not in FORMAT_EXTENSIONS:
                raise ImageRejected(f"Unsupported image format {fmt or 'unknown'}; use JPEG, PNG or WebP.")
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageRejected(f"The image is too large ({width}x{height} pixels).")
            probe.load()  # a full decode: truncated or corrupt files fail here, not later
    except ImageRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected("The file is not a readable image.") from exc
    return CheckedImage(
        data=data, sha256=hashlib.sha256(data).hexdigest(), format=fmt, width=width, height=height
    )
