"""Colour modes, EXIF orientation, resize policies and normalisation (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from visualsearch.embedding import EmbedderConfigError
from visualsearch.embedding.backbones import LITE_MEAN, LITE_STD
from visualsearch.embedding.preprocess import ImagePreprocessor, resize_to_square, to_rgb

from .helpers import clean_embedding_config  # noqa: F401  (autouse fixture)
from .helpers import picture, with_exif_orientation

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def test_rgb_passes_through_unchanged() -> None:
    image = picture(1, (40, 30))
    assert to_rgb(image) is image


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((5, 5)) == WHITE
    assert rgb.getpixel((0, 0)) == RED


def test_half_transparent_pixel_blends_with_white() -> None:
    rgb = to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 128)))
    assert rgb.getpixel((0, 0)) == pytest.approx((127, 127, 127), abs=1)


def test_palette_with_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    image.info["transparency"] = 0
    rgb = to_rgb(image)
    assert rgb.getpixel((0, 0)) == WHITE
    assert rgb.getpixel((1, 1)) == RED


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("L", 128, (128, 128, 128)),
        ("1", 1, WHITE),
        ("CMYK", (0, 255, 255, 0), RED),
        ("LA", (50, 0), WHITE),
        ("I;16", 65535, WHITE),
        ("I;16", 32896, (128, 128, 128)),  # 16-bit values are scaled, not clipped
    ],
)
def test_colour_modes_convert_to_rgb(mode: str, colour: object, expected: tuple[int, int, int]) -> None:
    rgb = to_rgb(Image.new(mode, (6, 4), colour))
    assert rgb.mode == "RGB"
    assert rgb.size == (6, 4)
    assert rgb.getpixel((3, 2)) == expected


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(orientation: int) -> None:
    upright = picture(7, (60, 90))
    stored = with_exif_orientation(upright, orientation)
    assert np.array_equal(np.asarray(to_rgb(stored)), np.asarray(upright))


def test_stretch_fills_the_square() -> None:
    out = resize_to_square(Image.new("RGB", (100, 200), RED), 32, "stretch")
    assert out.size == (32, 32)
    assert out.getpixel((0, 0)) == RED


def test_pad_keeps_aspect_ratio_on_white() -> None:
    out = resize_to_square(Image.new("RGB", (100, 200), RED), 32, "pad")
    assert out.size == (32, 32)
    assert out.getpixel((0, 16)) == WHITE  # left margin
    assert out.getpixel((31, 16)) == WHITE  # right margin
    assert out.getpixel((16, 0)) == RED  # full height is used
    assert out.getpixel((16, 31)) == RED


def test_crop_keeps_the_centre() -> None:
    # A tall image: red top band, blue middle, red bottom band, each a third.
    image = Image.new("RGB", (30, 90), RED)
    image.paste((0, 0, 255), (0, 30, 30, 60))
    out = resize_to_square(image, 30, "crop")
    assert out.size == (30, 30)
    assert all(out.getpixel((x, y)) == (0, 0, 255) for x in (0, 29) for y in (0, 29))


def test_square_images_are_the_same_under_every_policy() -> None:
    image = picture(3, (100, 100))
    results = [np.asarray(resize_to_square(image, 48, policy)) for policy in ("pad", "crop", "stretch")]
    assert all(np.array_equal(results[0], other) for other in results[1:])


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(EmbedderConfigError, match="pad, crop, stretch"):
        resize_to_square(picture(1, (20, 30)), 16, "squash")
    with pytest.raises(EmbedderConfigError):
        ImagePreprocessor(224, LITE_MEAN, LITE_STD, "squash")


def test_preprocessor_output_and_lite_normalisation() -> None:
    preprocess = ImagePreprocessor(224, LITE_MEAN, LITE_STD, "pad")
    tensor = preprocess(Image.new("RGB", (50, 100), (127, 127, 127)))
    assert tensor.shape == (3, 224, 224)
    assert tensor.dtype == torch.float32
    # Inception-style scaling: (v - 127) / 128, so white -> ~1.0 and 127 -> 0.0.
    assert tensor[:, 0, 0].tolist() == pytest.approx([1.0] * 3, abs=1e-6)
    assert tensor[:, 112, 112].tolist() == pytest.approx([0.0] * 3, abs=1e-6)


@pytest.mark.parametrize("mean, std", [(LITE_MEAN, LITE_STD), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_every_level_of_every_channel_is_normalised_as_the_multiply_add_computes_it(mean, std) -> None:
    """The lookup table gives the same float32 bits as (x * scale - shift) over the array,
    for all 256 levels in each channel, in the (3, S, S) layout."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    pixels.reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[:, None]  # every level, in each channel
    preprocess = ImagePreprocessor(224, mean, std, "pad")
    scale, shift = preprocess._affine()
    expected = np.ascontiguousarray((pixels.astype(np.float32) * scale - shift).transpose(2, 0, 1))
    got = preprocess(Image.fromarray(pixels)).numpy()
    assert got.shape == (3, 224, 224) and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
