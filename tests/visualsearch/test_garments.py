"""Garment localisation on generated flat-lays (no person: the foreground components)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from visualsearch.garments import MIN_ITEM_AREA, iou, locate_garments, locate_worn_garments


def sheet(size=(900, 1200), seed=0) -> Image.Image:
    """A pale, slightly noisy bed sheet."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(228, 4, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    pixels[..., 2] = np.clip(pixels[..., 2].astype(int) - 10, 0, 255)  # a warm white
    return Image.fromarray(pixels)


def test_each_item_of_a_flat_lay_is_found_even_a_small_one():
    photo = sheet()
    draw = ImageDraw.Draw(photo)
    top = (80, 90, 520, 640)  # a T-shirt: a quarter of the photo
    flip_flop = (620, 900, 820, 1040)  # 200x140 px: 2.6 % of the photo
    draw.rectangle(top, fill=(40, 60, 150))
    draw.ellipse(flip_flop, fill=(200, 60, 40))
    regions = locate_garments(photo)
    assert {r.kind for r in regions} == {"item"}
    for truth in (top, flip_flop):
        assert max(iou(r.box, truth) for r in regions) >= 0.5, (truth, regions)
    assert (200 * 140) / (900 * 1200) > MIN_ITEM_AREA  # the small one is above the floor


def test_a_pastel_item_on_a_pale_sheet_is_found():
    photo = sheet(seed=1)
    box = (200, 300, 700, 900)
    ImageDraw.Draw(photo).rectangle(box, fill=(236, 200, 212))  # pale pink, 18.6 Lab units from the sheet
    regions = locate_garments(photo)
    assert regions and max(iou(r.box, box) for r in regions) >= 0.5


def test_crumbs_and_a_plain_sheet_are_not_items():
    photo = sheet(seed=2)
    draw = ImageDraw.Draw(photo)
    for x in range(100, 800, 140):
        draw.rectangle((x, 500, x + 20, 520), fill=(90, 90, 90))  # 0.04 % each
    assert locate_garments(photo) == []
    assert locate_garments(sheet(seed=3)) == []
    assert locate_worn_garments(photo) == []  # nobody in the photo
