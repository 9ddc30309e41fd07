"""Seeded re-listing edits: what a seller does to someone else's photo before listing it again.

Each copy gets 2-4 edits composed at random (``relisted_copy``): a crop of 2-12% per side,
a text or logo overlay (shop names, prices, watermarks, in several sizes and positions), a
border, a resize (down to thumbnails), a brightness/contrast/saturation shift, a small
rotation, a mirror image, a JPEG re-encode at quality 30-90. Every parameter comes from a
generator seeded by (seed, item id): the same seed gives the same pixels on every run.
No Django, no torch.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

RELISTING_VERSION = 1
EDIT_NAMES = ("crop", "overlay", "border", "resize", "tone", "rotate", "mirror", "jpeg")
CROP_SHARE = (0.02, 0.12)  # per side
BORDER_SHARE = (0.03, 0.12)
RESIZE_LONG_SIDE = (60, 200)  # thumbnails up to a smaller listing photo (catalogue photos are 224-300)
TONE = (0.75, 1.3)  # brightness, contrast, saturation factors
ROTATION_DEGREES = (2.0, 8.0)
JPEG_QUALITY = (30, 90)
SHOP_TEXT = ("BEST DEALS", "ShopRight", "fashion_hub", "SALE -40%", "Rs. 799", "$19.99", "www.style-mart.in", "FREE SHIP", "@trendz")
MIN_EDITS, MAX_EDITS = 2, 4


def relisting_rng(seed: int, item_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(item_id.encode())])


def _crop(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    w, h = image.size
    left, top, right, bottom = rng.uniform(*CROP_SHARE, size=4)
    notes["crop_max_share"] = round(float(max(left, top, right, bottom)), 3)
    return image.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _overlay(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    """Shop name, price sticker or a watermark across the picture."""
    image = image.convert("RGB")
    w, h = image.size
    kind = rng.choice(["text", "sticker", "watermark"])
    text = str(rng.choice(SHOP_TEXT))
    if kind == "watermark":
        layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        size = max(8, int(w * rng.uniform(0.08, 0.16)))
        draw.text((w * 0.5, h * 0.5), text, font=_font(size), fill=(90, 90, 90, int(rng.integers(70, 140))), anchor="mm")
        layer = layer.rotate(float(rng.uniform(-35, 35)), resample=Image.Resampling.BILINEAR)
        return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    draw = ImageDraw.Draw(image)
    size = max(8, int(h * rng.uniform(0.05, 0.12)))
    font = _font(size)
    box = draw.textbbox((0, 0), text, font=font)
    tw, th = box[2] - box[0], box[3] - box[1]
    x = int(rng.uniform(0.02, 0.98) * max(1, w - tw))
    y = int(rng.choice([rng.uniform(0.01, 0.12), rng.uniform(0.85, 0.97), rng.uniform(0.3, 0.7)]) * max(1, h - th))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    if kind == "sticker":
        pad = max(2, size // 4)
        draw.rectangle((x - pad, y - pad, x + tw + pad, y + th + pad), fill=colour)
        draw.text((x - box[0], y - box[1]), text, font=font, fill=(255, 255, 255) if sum(colour) < 380 else (0, 0, 0))
    else:
        draw.text((x - box[0], y - box[1]), text, font=font, fill=colour)
    return image


def _border(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    width = max(2, int(max(image.size) * rng.uniform(*BORDER_SHARE)))
    fill = tuple(int(v) for v in (rng.integers(0, 256, 3) if rng.random() < 0.5 else (255, 255, 255)))
    return ImageOps.expand(image.convert("RGB"), border=width, fill=fill)


def _resize(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    side = int(rng.integers(RESIZE_LONG_SIDE[0], RESIZE_LONG_SIDE[1] + 1))
    scale = side / max(image.size)
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)


def _tone(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    image = image.convert("RGB")
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        if rng.random() < 0.67:
            image = enhancer(image).enhance(float(rng.uniform(*TONE)))
    return image


def _rotate(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    angle = float(rng.uniform(*ROTATION_DEGREES) * rng.choice([-1, 1]))
    return image.convert("RGB").rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))


def _jpeg(image: Image.Image, rng: np.random.Generator, notes: dict) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    buffer.seek(0)
    out = Image.open(buffer)
    out.load()
    return out


EDITS: dict[str, Callable[[Image.Image, np.random.Generator, dict], Image.Image]] = {
    "crop": _crop,
    "overlay": _overlay,
    "border": _border,
    "resize": _resize,
    "tone": _tone,
    "rotate": _rotate,
    "mirror": lambda image, rng, notes: ImageOps.mirror(image),
    "jpeg": _jpeg,
}


def relisted_copy(
    image: Image.Image, *, seed: int, item_id: str, edits: tuple[str, ...] | None = None
) -> tuple[Image.Image, tuple[str, ...], dict]:
    """A re-listed copy of ``image``, the edits applied (in order) and notes on their sizes
    (``crop_max_share``: the largest share cut from one side).

    Without ``edits``, 2-4 are drawn; the JPEG re-encode (when drawn) comes last, as the
    upload would, and the resize comes after the overlay (a seller writes on the full
    picture, the site then shrinks it).
    """
    rng = relisting_rng(seed, item_id)
    if edits is None:
        count = int(rng.integers(MIN_EDITS, MAX_EDITS + 1))
        edits = tuple(str(name) for name in rng.choice(EDIT_NAMES, size=count, replace=False))
        late = {"resize": 1, "jpeg": 2}
        edits = tuple(sorted(edits, key=lambda name: late.get(name, 0)))
    out = image.convert("RGB")
    notes: dict = {}
    for name in edits:
        out = EDITS[name](out, rng, notes)
    return out, edits, notes
