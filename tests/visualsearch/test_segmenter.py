"""The flat-lay segmenter's plumbing: input padding, output size, which segmenter is active
(the colour rule when it is off or its weights are absent)."""

import numpy as np
import pytest
import torch

from visualsearch import segmenter
from visualsearch.segmenter import ENV_SEGMENTER, SHIPPED, STRIDE, Segmenter, network, segmenter_active, to_input


def test_input_is_scaled_and_padded_to_the_stride_by_repeating_the_edge():
    pixels = np.zeros((13, 21, 3), np.uint8)
    pixels[-1, :, 0] = 255  # the last row is red
    x = to_input(pixels)
    assert x.shape == (1, 3, 16, 24) and x.dtype == torch.float32
    assert x.shape[2] % STRIDE == 0 and x.shape[3] % STRIDE == 0
    red = (1.0 - segmenter.PIXEL_MEAN) / segmenter.PIXEL_SCALE
    assert torch.allclose(x[0, 0, 12:, :], torch.full((4, 24), red))  # the padding repeats the red row
    assert to_input(np.stack([pixels, pixels])).shape == (2, 3, 16, 24)


def test_the_network_gives_one_logit_per_input_pixel():
    module = network().eval()
    with torch.inference_mode():
        assert module(torch.zeros(2, 3, 160, 120)).shape == (2, 160, 120)
        assert module(to_input(np.zeros((75, 101, 3), np.uint8))).shape == (1, 80, 104)
    assert sum(p.numel() for p in module.parameters()) < 500_000  # float16 weights well under 2 MB


def test_the_shipped_segmenter_is_active_by_default(monkeypatch):
    monkeypatch.delenv(ENV_SEGMENTER, raising=False)
    active = segmenter_active()
    assert active is not None and active.name == SHIPPED
    assert (active.directory / "MODEL_CARD.md").is_file()
    assert (active.directory / "weights.pt").stat().st_size < 2_000_000
    probability = active.foreground(np.full((120, 90, 3), 200, np.uint8))
    assert probability.shape == (120, 90) and 0.0 <= probability.min() and probability.max() <= 1.0


def test_off_or_absent_weights_mean_the_colour_rule(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(ENV_SEGMENTER, "off")
    assert segmenter_active() is None
    assert not caplog.records  # off is a choice, not a fault
    monkeypatch.setenv(ENV_SEGMENTER, "no-such-segmenter")
    assert segmenter_active() is None
    monkeypatch.setenv(ENV_SEGMENTER, str(tmp_path))  # a directory without weights.pt
    assert segmenter_active() is None
    assert segmenter_active() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and "no-such-segmenter" in warnings[0] and str(tmp_path) in warnings[1]  # once each


def test_a_directory_of_weights_trained_elsewhere_is_loaded(monkeypatch, tmp_path):
    torch.manual_seed(0)
    state = {k: v.half() if v.is_floating_point() else v for k, v in network().state_dict().items()}
    torch.save(state, tmp_path / "weights.pt")
    monkeypatch.setenv(ENV_SEGMENTER, str(tmp_path))
    active = segmenter_active()
    assert isinstance(active, Segmenter) and active.directory == tmp_path
    assert active.foreground(np.zeros((40, 30, 3), np.uint8)).shape == (40, 30)


@pytest.fixture(autouse=True)
def _forget_loaded():
    segmenter._loaded.clear()
    segmenter._missing_reported.clear()
    yield
    segmenter._loaded.clear()
    segmenter._missing_reported.clear()
