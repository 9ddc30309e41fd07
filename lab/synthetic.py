"""Seeded "consumer-like" phone photos of catalogue items (no Django, no torch).

There is no real street-to-shop pair in the shared data, so these stand in for a
shopper's photo of a product they saw: the catalogue photo with its white studio
background replaced by a textured surface, rotated, placed off-centre and cropped, lit
differently (brightness, contrast, colour cast), blurred, with sensor noise and a
phone-quality JPEG. Every parameter comes from a generator seeded by (seed, item id),
so the same seed gives the same pixels on every run; bump ``SYNTHETIC_VERSION`` when
the recipe changes (it is part of the embedding cache key).
"""

from __future__ import annotations

import io
import zlib
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

SYNTHETIC_VERSION = 1
# Studio backgrounds are near-white; a pixel brighter than this in every channel is background.
WHITE_THRESHOLD = 232
OUTPUT_LONG_SIDE = (360, 520)
ROTATION_DEGREES = 18.0
ITEM_SCALE = (0.75, 1.0)  # width of the (white-margined) catalogue photo as a share of the photo
CROP_KEEP = (0.78, 0.95)  # share of each side kept by the final crop
BRIGHTNESS = (0.65, 1.25)
CONTRAST = (0.7, 1.15)
COLOUR_CAST_SD = 0.06
BLUR_RADIUS = (0.3, 1.8)
NOISE_SD = (2.0, 7.0)
JPEG_QUALITY = (55, 85)


@dataclass(frozen=True)
class ViewParams:
    background: tuple[int, int, int]
    rotation: float
    scale: float
    offset: tuple[float, float]
    crop: tuple[float, float, float, float]  # left, top, right, bottom as shares
    brightness: float
    contrast: float
    cast: tuple[float, float, float]
    blur: float
    noise: float
    quality: int
    long_side: int


def view_rng(seed: int, item_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(item_id.encode()), SYNTHETIC_VERSION])


def view_params(rng: np.random.Generator) -> ViewParams:
    # Muted surface colours: beds, floors, tables, walls.
    base = rng.uniform(60, 200)
    background = tuple(int(np.clip(base + rng.normal(0, 25), 20, 235)) for _ in range(3))
    keep_w, keep_h = rng.uniform(*CROP_KEEP), rng.uniform(*CROP_KEEP)
    left, top = rng.uniform(0, 1 - keep_w), rng.uniform(0, 1 - keep_h)
    return ViewParams(
        background=background,  # type: ignore[arg-type]
        rotation=float(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES)),
        scale=float(rng.uniform(*ITEM_SCALE)),
        offset=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08))),
        crop=(float(left), float(top), float(left + keep_w), float(top + keep_h)),
        brightness=float(rng.uniform(*BRIGHTNESS)),
        contrast=float(rng.uniform(*CONTRAST)),
        cast=tuple(float(1 + rng.normal(0, COLOUR_CAST_SD)) for _ in range(3)),  # type: ignore[arg-type]
        blur=float(rng.uniform(*BLUR_RADIUS)),
        noise=float(rng.uniform(*NOISE_SD)),
        quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
        long_side=int(rng.integers(OUTPUT_LONG_SIDE[0], OUTPUT_LONG_SIDE[1] + 1)),
    )


def _background(size: tuple[int, int], colour: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A surface: flat colour, a lighting gradient, low-frequency blotches and grain."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * rng.uniform(10, 40)
    coarse = rng.normal(0, 1, (8, 8)).astype(np.float32)
    blotches = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) * rng.uniform(4, 14)
    grain = rng.normal(0, 4, (h, w)).astype(np.float32)
    surface = gradient + blotches + grain
    return np.clip(np.asarray(colour, dtype=np.float32)[None, None, :] + surface[..., None], 0, 255)


def consumer_view(image: Image.Image, seed: int, item_id: str) -> Image.Image:
    """One synthetic phone photo of the catalogue ``image`` (an RGB PIL image)."""
    rng = view_rng(seed, item_id)
    p = view_params(rng)
    item = image.convert("RGB")
    pixels = np.asarray(item, dtype=np.uint8)
    # Alpha: 0 on the studio background, feathered so the cut-out has no hard halo.
    background_mask = (pixels >= WHITE_THRESHOLD).all(axis=2)
    alpha = Image.fromarray(np.where(background_mask, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    cutout = item.copy()
    cutout.putalpha(alpha)
    cutout = cutout.rotate(p.rotation, resample=Image.Resampling.BICUBIC, expand=True)

    # Portrait 3:4 canvas, like a phone photo.
    long_side = p.long_side
    canvas_w, canvas_h = int(long_side * 3 / 4), long_side
    target_w = max(8, int(canvas_w * p.scale))
    target_h = max(8, int(cutout.height * target_w / cutout.width))
    cutout = cutout.resize((target_w, target_h), Image.Resampling.BICUBIC)
    canvas = Image.fromarray(_background((canvas_w, canvas_h), p.background, rng).astype(np.uint8))
    x = int((canvas_w - target_w) / 2 + p.offset[0] * canvas_w)
    y = int((canvas_h - target_h) / 2 + p.offset[1] * canvas_h)
    canvas.paste(cutout, (x, y), cutout)

    l, t, r, b = p.crop
    photo = canvas.crop((int(l * canvas_w), int(t * canvas_h), int(r * canvas_w), int(b * canvas_h)))
    photo = ImageEnhance.Brightness(photo).enhance(p.brightness)
    photo = ImageEnhance.Contrast(photo).enhance(p.contrast)
    arr = np.asarray(photo, dtype=np.float32) * np.asarray(p.cast, dtype=np.float32)[None, None, :]
    photo = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(p.blur))
    arr = np.asarray(photo, dtype=np.float32) + rng.normal(0, p.noise, (photo.height, photo.width, 3)).astype(np.float32)
    photo = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return jpeg_roundtrip(photo, p.quality)


# Edits of a photo that keep it the same garment (for the instance term of training and the
# "tell two consumer photos apart" evaluation): the outside check's own edits are unknown,
# so the ranges are wide.
VARIANT_AREA = (0.55, 1.0)  # share of the photo kept by the random crop
VARIANT_ASPECT = (0.8, 1.25)
VARIANT_ROTATION = 10.0
VARIANT_JITTER = 0.25  # brightness, contrast and saturation: 1 +- this
VARIANT_QUALITY = (40, 90)
VARIANT_LONG_SIDE = (200, 520)
# The catalogue's smallest copies are 60x80 (Kaggle's "small" distribution); a thumbnail
# view is the photo at that size, aspect restored (the catalogue photos are squashed 1:1).
THUMBNAIL_SIZE = (60, 80)


def photo_variant(image: Image.Image, seed: int, item_id: str) -> Image.Image:
    """The same photo, edited: random crop, maybe mirrored, rotated, recoloured, rescaled, re-encoded."""
    rng = np.random.default_rng([seed, zlib.crc32(item_id.encode()), SYNTHETIC_VERSION, 1])
    photo = image.convert("RGB")
    w, h = photo.size
    area = rng.uniform(*VARIANT_AREA) * w * h
    aspect = rng.uniform(*VARIANT_ASPECT)
    cw, ch = min(w, int(round((area * aspect) ** 0.5))), min(h, int(round((area / aspect) ** 0.5)))
    left, top = int(rng.uniform(0, w - cw + 1)), int(rng.uniform(0, h - ch + 1))
    photo = photo.crop((left, top, left + max(cw, 8), top + max(ch, 8)))
    if rng.random() < 0.5:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = rng.uniform(-VARIANT_ROTATION, VARIANT_ROTATION)
    photo = photo.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=tuple(int(v) for v in np.asarray(photo).reshape(-1, 3).mean(0)))
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        photo = enhancer(photo).enhance(rng.uniform(1 - VARIANT_JITTER, 1 + VARIANT_JITTER))
    long_side = int(rng.integers(VARIANT_LONG_SIDE[0], VARIANT_LONG_SIDE[1] + 1))
    scale = long_side / max(photo.size)
    photo = photo.resize((max(8, int(photo.width * scale)), max(8, int(photo.height * scale))), Image.Resampling.BICUBIC)
    return jpeg_roundtrip(photo, int(rng.integers(VARIANT_QUALITY[0], VARIANT_QUALITY[1] + 1)))


def thumbnail_view(image: Image.Image) -> Image.Image:
    """The catalogue photo as a 60x80 JPEG thumbnail, like the catalogue's smallest copies."""
    return jpeg_roundtrip(image.convert("RGB").resize(THUMBNAIL_SIZE, Image.Resampling.BICUBIC), 75)


def jpeg_roundtrip(photo: Image.Image, quality: int) -> Image.Image:
    """``photo`` saved as a JPEG of ``quality`` and decoded again (loaded)."""
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    out = Image.open(buffer)
    out.load()
    return out


def describe() -> dict:
    """The recipe's constants, for the report."""
    return {
        "version": SYNTHETIC_VERSION,
        "output_long_side": OUTPUT_LONG_SIDE,
        "rotation_degrees": ROTATION_DEGREES,
        "item_scale": ITEM_SCALE,
        "crop_keep": CROP_KEEP,
        "brightness": BRIGHTNESS,
        "contrast": CONTRAST,
        "colour_cast_sd": COLOUR_CAST_SD,
        "blur_radius": BLUR_RADIUS,
        "noise_sd": NOISE_SD,
        "jpeg_quality": JPEG_QUALITY,
    }


__all__ = ["SYNTHETIC_VERSION", "ViewParams", "consumer_view", "describe", "view_params", "view_rng", "asdict"]
