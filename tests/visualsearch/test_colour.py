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
