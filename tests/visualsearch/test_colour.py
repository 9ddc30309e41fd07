"""The studio colour profiles of stored fingerprints: computed once per process, the same
whether computed alone, in a batch or read back from the cache."""

from __future__ import annotations

import numpy as np
import pytest

from visualsearch import colour


def _fingerprint(seed: int) -> str:
    """A colour fingerprint as stored (``ImageFingerprint.colour``): two 8x8 RGB thumbnails, hex."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, size=2 * 8 * 8 * 3, dtype=np.uint8).tobytes().hex()


@pytest.fixture
def counted(monkeypatch):
    monkeypatch.setattr(colour, "_profiles", {})
    computed: list[list[str]] = []
    compute = colour._studio_profiles_computed
    monkeypatch.setattr(colour, "_studio_profiles_computed", lambda hexes: computed.append(list(hexes)) or compute(hexes))
    return computed


def test_each_fingerprint_is_computed_once_and_reads_back_the_same(counted):
    hexes = [_fingerprint(n) for n in range(5)]
    first = colour.studio_profiles(hexes + ["not a fingerprint", hexes[0]])
    again = colour.studio_profiles([hexes[3], hexes[0], _fingerprint(9)])
    assert counted == [hexes + ["not a fingerprint"], [_fingerprint(9)]]  # each new one once, in one batch
    assert first[-2] is None and first[0] is first[-1]
    for profile, colour_hex in zip(first[:5], hexes):
        np.testing.assert_allclose(profile.shares, colour.studio_profile(colour_hex).shares, atol=1e-12)
    assert again[0] is first[3] and again[1] is first[0]


def test_the_cache_is_emptied_at_its_cap(counted, monkeypatch):
    monkeypatch.setattr(colour, "PROFILE_CACHE_SIZE", 3)
    colour.studio_profiles([_fingerprint(n) for n in range(3)])
    kept = colour.studio_profiles([_fingerprint(3), _fingerprint(0)])
    assert len(colour._profiles) <= 3 and kept[0] is not None and kept[1] is not None


def _reference_lab(rgb: np.ndarray) -> np.ndarray:
    """The textbook sRGB -> Lab (D65), a power per channel, as the module computed it before the lookup table."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def test_the_fast_colour_maths_equals_the_textbook_formulas():
    rgb = np.random.default_rng(3).integers(0, 256, size=(5000, 3), dtype=np.uint8)
    every_level = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    for pixels in (rgb, every_level):
        np.testing.assert_allclose(colour.srgb_to_lab(pixels), _reference_lab(pixels), atol=1e-9)
        np.testing.assert_allclose(colour.srgb_to_lab(pixels.astype(np.float64)), _reference_lab(pixels), atol=1e-9)
    # The soft histogram: squared distances to each palette colour, a softmax per pixel.
    lab = _reference_lab(rgb)
    d2 = ((lab[:, None, :] - colour._PALETTE_LAB[None, :, :]) ** 2).sum(axis=2)
    weights = np.exp(-(d2 - d2.min(axis=1, keepdims=True)) / (2 * colour.SOFTNESS**2))
    shares = (weights / weights.sum(axis=1, keepdims=True)).sum(axis=0)
    np.testing.assert_allclose(colour.profile_of_pixels(rgb).shares, shares / shares.sum(), atol=1e-12)


def test_a_photo_profile_leaves_the_callers_image_alone():
    from PIL import Image

    photo = Image.new("RGB", (200, 300), (230, 230, 225))
    photo.paste((200, 30, 40), (50, 60, 150, 240))
    before = photo.tobytes()
    whole = colour.garment_profile(photo)
    boxed = colour.garment_profile(photo, (40, 50, 160, 250))
    assert photo.size == (200, 300) and photo.tobytes() == before
    assert whole.dominant == "Red" and boxed.dominant == "Red"
