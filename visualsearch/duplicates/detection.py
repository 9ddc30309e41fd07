"""The duplicate detector's arithmetic: perceptual hashes, their distance, and the decision.

Pure Python (Pillow, imagehash, numpy), no Django and no torch, so that the evaluation
command can score labelled pairs straight from image files with the very rule the
workers apply to the catalogue.

Two signals, each good where the other is weak:

* The CNN embedding's cosine similarity says "looks alike". It survives crops, borders,
  overlays and colour edits of one photo, but two different shirts shot by the same
  studio in the same pose reach 0.96 too.
* A 256-bit DCT perceptual hash (imagehash.phash, hash_size 16) says "is the same
  picture". It tells same-pose photos apart far better (on the calibration set no pair of
  different products came closer than 20 bits, copies of one photo at other sizes and
  aspect ratios stay within 12) and survives resizing, re-encoding and tiny 60x80
  thumbnails, on which the CNN falls to cosine 0.57. It is computed twice: on the whole
  image and on the image trimmed to its non-white content, so a copy that was re-cropped
  within its white margin, or padded, keeps a small distance.

The decision combines them linearly (see ``near_copy_score``): a small hash distance is
enough even for a blurry thumbnail, and a strong CNN agreement lets an edited copy keep
a few more bits of hash distance. A third, cheap signal vetoes: the hashes are grey-level
only, so two colourways of one design shot alike (a navy and a black T-shirt) pass them;
an 8x8 colour thumbnail's chromaticity distance (``colour_distance``) rejects those. Thresholds were calibrated with
``manage.py evaluate_duplicates`` (numbers in README.md, "Duplicate listings").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import imagehash
import numpy as np
from PIL import Image, ImageFilter, ImageOps

HASH_SIZE = 16  # 16 x 16 = 256 bits
HASH_BITS = HASH_SIZE * HASH_SIZE
HASH_HEX_CHARS = HASH_BITS // 4
# Pixels at or above this grey level count as the white studio background when trimming
# (after a 1-pixel box blur, so that JPEG ringing around the edges does not move the box).
TRIM_WHITE_LEVEL = 220
# Colour thumbnails: pixels at or above this mean level are background, left out.
COLOUR_WHITE_LEVEL = 236
# A trimmed box smaller than this (pixels a side) is noise, not content: hash the whole image.
TRIM_MIN_SIDE = 8
# Candidate generation by hash: each hash is cut into 16 bands of 16 bits. Two hashes within
# 15 bits of each other agree on at least one whole band (pigeonhole), so an index lookup on
# band values finds every such pair without comparing all pairs.
BAND_BITS = 16
BANDS_PER_HASH = HASH_BITS // BAND_BITS

# The score: 70% hash agreement (1 at distance 0, 0 from HASH_SCALE bits on), 30% cosine.
HASH_WEIGHT = 0.7
HASH_SCALE = 24
# Calibrated on duplicates.csv against pairs of different products of one article type and
# colour, random and hardest (each one's nearest neighbour): see README.md.
NEAR_COPY_THRESHOLD = 0.48


# Colour: an 8x8 RGB thumbnail (whole image, aspect ignored like the hash). Both hashes see
# grey levels only, so a navy and a black T-shirt of one design, shot alike, hash alike.
COLOUR_SIDE = 8
COLOUR_HEX_CHARS = COLOUR_SIDE * COLOUR_SIDE * 3 * 2  # per thumbnail; two are stored (whole, trimmed)
# Above this chromaticity distance (see ``colour_distance``) two images are different
# colourways, whatever the hash says. Copies of one photo measured at most 1.98 (60x80
# thumbnails), +12% brightness at most 2.64; a navy vs a black print T-shirt 3.24.
MAX_COLOUR_DISTANCE = 2.2
# The looser the hash match, the stricter the colour check: beyond this hash distance (no
# copy of duplicates.csv is further than 12 bits) a pair is an edited copy or a same-pose
# shot of another garment, and pale colourways (a white and a light-blue shirt on one model)
# differ by 1.2-1.3 only. Re-cropped copies of one photo stayed under 0.75.
LOOSE_HASH_DISTANCE = 12
MAX_COLOUR_DISTANCE_LOOSE = 1.0


@dataclass(frozen=True)
class Fingerprint:
    """Perceptual hashes of one image, as hex strings of HASH_HEX_CHARS characters."""

    phash: str  # the whole image
    phash_trim: str  # the image trimmed to its non-white content
    colour: str = ""  # 8x8 RGB thumbnails of the whole and the trimmed image, hex; "" when unknown

    def bands(self) -> list[int]:
        """Tagged band values of both hashes, for the GIN ``&&`` candidate lookup.

        Each value packs (which hash, which band) above the band's 16 bits, so only the
        same band of the same kind of hash can match.
        """
        values = []
        for kind, hexdigest in enumerate((self.phash, self.phash_trim)):
            bits = int(hexdigest, 16)
            for band in range(BANDS_PER_HASH):
                chunk = (bits >> (band * BAND_BITS)) & ((1 << BAND_BITS) - 1)
                values.append(((kind * BANDS_PER_HASH + band) << BAND_BITS) | chunk)
        return values


def _to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB, transparency on white (as the embedder sees it)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def trim_to_content(image: Image.Image) -> Image.Image:
    """``image`` cropped to the box around its non-white pixels (the whole image if none)."""
    grey = image.convert("L").filter(ImageFilter.BoxBlur(1))
    mask = grey.point(lambda level: 255 if level < TRIM_WHITE_LEVEL else 0)
    box = mask.getbbox()
    if box is None or box[2] - box[0] < TRIM_MIN_SIDE or box[3] - box[1] < TRIM_MIN_SIDE or box == (0, 0, *image.size):
        return image
    return image.crop(box)


def _phash_hex(image: Image.Image) -> str:
    return str(imagehash.phash(image, hash_size=HASH_SIZE))


def fingerprint(image: Image.Image) -> Fingerprint:
    rgb = _to_rgb(image)
    trimmed = trim_to_content(rgb)
    whole = rgb.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX).tobytes().hex()
    phash = _phash_hex(rgb)
    if trimmed is rgb:  # nothing to trim (most photos that are not studio shots): the same hash and thumbnail
        return Fingerprint(phash=phash, phash_trim=phash, colour=whole + whole)
    trim_thumbnail = trimmed.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX).tobytes().hex()
    return Fingerprint(phash=phash, phash_trim=_phash_hex(trimmed), colour=whole + trim_thumbnail)


# An upload is hashed at about this size (an integer box reduction first): the hash sees
# 64x64 pixels anyway, and the trim's blur and the resize grow with the photo. A 1280-px
# photo: 32.4 ms whole, 3.1 ms reduced to 256 px; the hashes of 200 catalogue photos shown at
# 1280 px stayed within 6 bits of the original's (p99 4, median 0), where copies of one photo
# measured 2-8 bits and other products 14 or more. 128 px saved another ~1 ms but lost 5 of
# the 218 held-out copies (225x300 re-encodes halved to 112x150: 16-32 bits; 2026-12-07).
UPLOAD_HASH_SIDE = 256


def upload_fingerprint(image: Image.Image) -> Fingerprint:
    """``fingerprint`` of a shopper's photo, reduced first when it is large."""
    factor = max(image.size) // UPLOAD_HASH_SIDE
    return fingerprint(image.reduce(factor) if factor > 1 else image)


def _chromaticity_distance(x: np.ndarray, y: np.ndarray) -> float | None:
    content = (x.mean(axis=1) < COLOUR_WHITE_LEVEL) | (y.mean(axis=1) < COLOUR_WHITE_LEVEL)
    if not content.any():
        return None
    # +8 per channel keeps near-black pixels from having an arbitrary chromaticity.
    cx = (x + 8) / (x.sum(axis=1, keepdims=True) + 24)
    cy = (y + 8) / (y.sum(axis=1, keepdims=True) + 24)
    return float(np.abs(cx - cy)[content].sum(axis=1).mean() * 100)


def colour_distance(a: Fingerprint, b: Fingerprint) -> float:
    """How different the colours are, brightness aside: the mean L1 distance between the
    chromaticities (r, g, b) / (r + g + b) of two 8x8 thumbnails, x100, over the pixels that
    are not white background in either; whole images or trimmed content, whichever is less
    (as for the hash: padding moves the content). 0 when either colour is unknown."""
    if len(a.colour) != 2 * COLOUR_HEX_CHARS or len(b.colour) != 2 * COLOUR_HEX_CHARS:
        return 0.0
    distances = []
    for part in (slice(0, COLOUR_HEX_CHARS), slice(COLOUR_HEX_CHARS, None)):
        x = np.frombuffer(bytes.fromhex(a.colour[part]), dtype=np.uint8).reshape(-1, 3).astype(np.float64)
        y = np.frombuffer(bytes.fromhex(b.colour[part]), dtype=np.uint8).reshape(-1, 3).astype(np.float64)
        distance = _chromaticity_distance(x, y)
        if distance is not None:
            distances.append(distance)
    return round(min(distances), 3) if distances else 0.0


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hash_distance(a: Fingerprint, b: Fingerprint) -> int:
    """Bits that differ, whole image against whole image or content against content, whichever is less."""
    return min(hamming(a.phash, b.phash), hamming(a.phash_trim, b.phash_trim))


def near_copy_score(*, cosine: float, hash_distance: int) -> float:
    """How sure we are that two images are copies of one photo, in [0, 1].

    ``HASH_WEIGHT * (1 - distance / HASH_SCALE) + (1 - HASH_WEIGHT) * cosine``, both terms
    clipped to [0, 1]. Identical pixels score 1. At the threshold 0.48 a pair needs a hash
    within 17 bits at cosine 1.0, 15 at cosine 0.8, 13 at cosine 0.55 (the tiny 60x80
    thumbnails), 11 at 0.3. Different products shot in one studio pose (same model, same
    framing, another shirt) come as close as 20 bits with cosine 0.95: they score 0.40.
    """
    hash_term = min(1.0, max(0.0, 1.0 - hash_distance / HASH_SCALE))
    cosine_term = min(1.0, max(0.0, cosine))
    return round(HASH_WEIGHT * hash_term + (1.0 - HASH_WEIGHT) * cosine_term, 4)


@dataclass(frozen=True)
class Thresholds:
    near_copy: float = NEAR_COPY_THRESHOLD
    max_colour_distance: float = MAX_COLOUR_DISTANCE
    loose_hash_distance: int = LOOSE_HASH_DISTANCE
    max_colour_distance_loose: float = MAX_COLOUR_DISTANCE_LOOSE

    def colour_ok(self, *, hash_distance: int, colour_distance: float) -> bool:
        limit = self.max_colour_distance if hash_distance <= self.loose_hash_distance else self.max_colour_distance_loose
        return colour_distance <= limit

    def is_near_copy(self, *, cosine: float, hash_distance: int, colour_distance: float = 0.0) -> bool:
        return self.colour_ok(hash_distance=hash_distance, colour_distance=colour_distance) and (
            near_copy_score(cosine=cosine, hash_distance=hash_distance) >= self.near_copy
        )


    def max_hash_distance(self) -> int:
        """The largest hash distance that can still pass (with cosine 1): candidates further are skipped."""
        hash_term_needed = (self.near_copy - (1.0 - HASH_WEIGHT)) / HASH_WEIGHT
        return max(0, int(HASH_SCALE * (1.0 - hash_term_needed) + 1e-9))


K = TypeVar("K")

DEFAULT_THRESHOLDS = Thresholds()


def same_photo_ranked(
    query: Fingerprint, candidates: Iterable[tuple[K, Fingerprint, float]], thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> list[tuple[K, float, int]]:
    """Which candidates (key, fingerprint, cosine to the query) hold the query's own photo, by
    the rule that flags duplicate listings: (key, score, hash distance), most certain first.

    A shopper who uploads a saved product picture, a screenshot or a thumbnail of a listing is
    asking for that listing. The embedding alone ranks it second for 3 of the 218 held-out
    copies of v10 (60x80 thumbnails at cosine 0.65-0.78, another product 0.05 higher); their
    hashes were 2-4 bits from their originals, the nearest other product's 14 or more.
    """
    out = []
    for key, other, cosine in candidates:
        distance = hash_distance(query, other)
        if thresholds.is_near_copy(cosine=cosine, hash_distance=distance, colour_distance=colour_distance(query, other)):
            out.append((key, near_copy_score(cosine=cosine, hash_distance=distance), distance))
    out.sort(key=lambda row: (-row[1], row[2]))
    return out


def precision_recall(scores_pos: np.ndarray, scores_neg: np.ndarray, threshold: float) -> tuple[float, float]:
    """Precision and recall of "score >= threshold" on labelled scores."""
    tp = int(np.sum(scores_pos >= threshold))
    fp = int(np.sum(scores_neg >= threshold))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(scores_pos) if len(scores_pos) else 0.0
    return precision, recall


def pr_curve(scores_pos: np.ndarray, scores_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall) at every distinct score, highest threshold first."""
    thresholds = np.unique(np.concatenate([scores_pos, scores_neg]))[::-1]
    pos = np.sort(scores_pos)
    neg = np.sort(scores_neg)
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    recall = tp / max(len(pos), 1)
    return thresholds, precision, recall
