"""The colour of a garment, as a small histogram over named colours (numpy and Pillow only).

The CNN embedding is deliberately tolerant of lighting and colour casts (it was trained on
phone-like photos), so "a white T-shirt" also finds blue and red ones. This module gives the
search a colour term:

* a **query photo**'s garment colour: the pixels that differ from the background, which is
  estimated from the photo's border (a bed, a floor, a wall), inside the box when there is one;
* a **product**'s colour: the non-white pixels of its studio photo, from the 8x8 thumbnail of
  the trimmed image that duplicate detection already stores (``ImageFingerprint.colour``), so
  no extra pass over the catalogue is needed.

Both become a soft histogram over :data:`PALETTE` (the catalogue's common ``baseColour``
names), compared by histogram intersection (1 = the same colours in the same shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Representative sRGB values of the catalogue's common baseColour names. Lightness decides
# black / grey / white; hue and chroma the rest, so a few prototypes per name are enough.
PALETTE: dict[str, tuple[int, int, int]] = {
    "Black": (25, 25, 28),
    "Grey": (128, 128, 130),
    "White": (240, 240, 238),
    "Navy Blue": (30, 40, 80),
    "Blue": (45, 90, 170),
    "Light Blue": (150, 190, 225),
    "Red": (190, 30, 40),
    "Maroon": (110, 25, 40),
    "Pink": (235, 150, 175),
    "Purple": (110, 60, 140),
    "Green": (40, 130, 70),
    "Olive": (110, 110, 50),
    "Yellow": (235, 205, 60),
    "Orange": (235, 120, 40),
    "Brown": (110, 70, 45),
    "Beige": (215, 195, 160),
}
NAMES = tuple(PALETTE)
# Soft assignment: a pixel's weight for a prototype falls with exp(-d^2 / (2 s^2)) in Lab.
SOFTNESS = 14.0
# Query photos are read at this size: colour needs no detail, and it bounds the cost (~2 ms).
QUERY_SIDE = 64
# Pixels further than this (Lab) from the border's colour are the garment.
FOREGROUND_DISTANCE = 20.0
# Too few foreground pixels (a garment the colour of its background): use the centre instead.
MIN_FOREGROUND = 0.08
# Thumbnail pixels at or above this mean level are the studio background (detection.py's level).
STUDIO_WHITE = 236


def _srgb_linear(c: np.ndarray) -> np.ndarray:
    """sRGB values in 0..1 -> linear light."""
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


# The same for each of the 256 levels: a lookup instead of a power per channel (a 64-px
# query photo: 0.66 -> 0.38 ms for its Lab, same values to 1e-13).
_SRGB_LINEAR = _srgb_linear(np.arange(256, dtype=np.float64) / 255.0)
# Linear RGB -> XYZ, already divided by the D65 white point.
_TO_XYZ_D65 = (
    np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    / np.array([0.95047, 1.0, 1.08883])[:, None]
).T


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(n, 3) sRGB 0..255 -> CIE Lab (D65)."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        linear = _SRGB_LINEAR[rgb]
    else:
        linear = _srgb_linear(rgb.astype(np.float64) / 255.0)
    xyz = linear @ _TO_XYZ_D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


_PALETTE_LAB = srgb_to_lab(np.array(list(PALETTE.values()), dtype=np.uint8))
_PALETTE_NORMS = (_PALETTE_LAB**2).sum(axis=1)


def _palette_weights(lab: np.ndarray) -> np.ndarray:
    """(n, len(PALETTE)) soft assignment of Lab pixels to the palette, each row summing to 1."""
    # Squared distances expanded as |x|^2 + |p|^2 - 2 x.p: one small matrix product instead of
    # an (n, 16, 3) difference array (a 64-px photo's profile: 3.9 -> 1.7 ms, equal to 1e-15).
    d2 = (lab**2).sum(axis=1)[:, None] + _PALETTE_NORMS[None, :] - 2.0 * (lab @ _PALETTE_LAB.T)
    weights = np.exp(-(d2 - d2.min(axis=1, keepdims=True)) / (2 * SOFTNESS**2))
    return weights / weights.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ColourProfile:
    shares: np.ndarray  # (len(PALETTE),) sums to 1

    @property
    def dominant(self) -> str:
        return NAMES[int(np.argmax(self.shares))]

    def similarity(self, other: ColourProfile) -> float:
        """Histogram intersection in [0, 1]."""
        return float(np.minimum(self.shares, other.shares).sum())


def profile_of_pixels(rgb: np.ndarray) -> ColourProfile | None:
    """The soft palette histogram of (n, 3) sRGB pixels; None for no pixels."""
    if len(rgb) == 0:
        return None
    return _profile_of_lab(srgb_to_lab(rgb.reshape(-1, 3)))


def _profile_of_lab(lab: np.ndarray) -> ColourProfile | None:
    if len(lab) == 0:
        return None
    shares = _palette_weights(lab).sum(axis=0)
    return ColourProfile(shares=shares / shares.sum())


def garment_profile(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> ColourProfile | None:
    """The colours of the garment in a shopper's photo (inside ``box``, left/upper/right/lower)."""
    region = image if image.mode == "RGB" else image.convert("RGB")
    # thumbnail() works in place: on a crop (already a new image) or on a copy, never the caller's.
    region = region.crop(box) if box is not None else region.copy()
    region.thumbnail((QUERY_SIDE, QUERY_SIDE))
    pixels = np.asarray(region, dtype=np.uint8)
    h, w, _ = pixels.shape
    if h < 4 or w < 4:
        return profile_of_pixels(pixels.reshape(-1, 3))
    ring = max(1, min(h, w) // 10)
    border = np.concatenate([pixels[:ring].reshape(-1, 3), pixels[-ring:].reshape(-1, 3),
                             pixels[:, :ring].reshape(-1, 3), pixels[:, -ring:].reshape(-1, 3)])
    background = np.median(srgb_to_lab(border), axis=0)
    lab = srgb_to_lab(pixels.reshape(-1, 3))
    foreground = np.linalg.norm(lab - background, axis=1) > FOREGROUND_DISTANCE
    if foreground.mean() < MIN_FOREGROUND:
        centre = np.zeros((h, w), dtype=bool)
        centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
        foreground = centre.reshape(-1)
    return _profile_of_lab(lab[foreground])


def _studio_pixels(colour_hex: str) -> np.ndarray | None:
    if len(colour_hex) % 2 or len(colour_hex) < 2 * 8 * 8 * 3 * 2:
        return None
    half = len(colour_hex) // 2
    pixels = np.frombuffer(bytes.fromhex(colour_hex[half:]), dtype=np.uint8).reshape(-1, 3)
    content = pixels[pixels.mean(axis=1) < STUDIO_WHITE]
    return content if len(content) >= 4 else pixels


# Profiles already computed in this process, by fingerprint (a pure function of the hex):
# a photo search re-ranks ~40 candidates, whose profiles cost 1.95 ms to compute in one pass
# and 0.003 ms to look up (demo catalogue, 2026-12-06); the catalogue's popular products
# come back search after search. A photo search in process: 36.3 -> 35.1 ms (medians of six
# alternating rounds of 40). About 0.5 KB an entry: the cap keeps it near 10 MB.
PROFILE_CACHE_SIZE = 20_000
_profiles: dict[str, ColourProfile | None] = {}
_UNKNOWN = object()


def studio_profiles(colour_hexes: Sequence[str]) -> list[ColourProfile | None]:
    """``studio_profile`` of many fingerprints, each computed once per process
    (``PROFILE_CACHE_SIZE``), the new ones in one pass of numpy."""
    found: dict[str, ColourProfile | None] = {}
    missing = []
    for colour_hex in dict.fromkeys(colour_hexes):
        profile = _profiles.get(colour_hex, _UNKNOWN)  # another thread may clear the cache meanwhile
        if profile is _UNKNOWN:
            missing.append(colour_hex)
        else:
            found[colour_hex] = profile
    if missing:
        computed = dict(zip(missing, _studio_profiles_computed(missing), strict=True))
        if len(_profiles) + len(computed) > PROFILE_CACHE_SIZE:
            _profiles.clear()
        _profiles.update(computed)
        found.update(computed)
    return [found[h] for h in colour_hexes]


def _studio_profiles_computed(colour_hexes: Sequence[str]) -> list[ColourProfile | None]:
    """``studio_profile`` of many fingerprints in one pass of numpy: a search re-ranks ~40
    candidates, and one call per candidate cost ~0.2 ms each in numpy's per-call overhead
    (8 ms of a 25 ms search, measured with cProfile on the demo catalogue)."""
    pixel_sets = [_studio_pixels(h) for h in colour_hexes]
    present = [p for p in pixel_sets if p is not None]
    if not present:
        return [None] * len(pixel_sets)
    pixels = np.concatenate(present)
    weights = _palette_weights(srgb_to_lab(pixels))
    starts = np.cumsum([0] + [len(p) for p in present[:-1]])
    shares = np.add.reduceat(weights, starts, axis=0)
    profiles = iter(ColourProfile(shares=row / row.sum()) for row in shares)
    return [next(profiles) if p is not None else None for p in pixel_sets]


def studio_profile(colour_hex: str) -> ColourProfile | None:
    """A product's colours from its stored fingerprint (``ImageFingerprint.colour``: the whole
    and the trimmed 8x8 thumbnails, hex): the trimmed one's non-white pixels."""
    pixels = _studio_pixels(colour_hex)
    return profile_of_pixels(pixels) if pixels is not None else None
