import numpy as np
from PIL import Image, ImageDraw

from lab.evaluation.baseline import baseline_embed, baseline_features, colour_histogram, feature_dim, hog


def stripes(vertical: bool, colour=(20, 20, 200)) -> Image.Image:
    image = Image.new("RGB", (160, 160), "white")
    draw = ImageDraw.Draw(image)
    for i in range(0, 160, 16):
        draw.rectangle([i, 0, i + 7, 159] if vertical else [0, i, 159, i + 7], fill=colour)
    return image


def test_dimensions_and_unit_length():
    vectors = baseline_embed([stripes(True), stripes(False)])
    assert vectors.shape == (2, feature_dim()) == (2, 1892)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert baseline_embed([]).shape == (0, 1892)


def test_hog_sees_orientation_and_colour_histogram_sees_colour():
    vertical, horizontal = hog(stripes(True)), hog(stripes(False))
    assert float(vertical @ hog(stripes(True, colour=(200, 20, 20)))) > 0.99  # shape only
    assert float(vertical @ horizontal) < 0.5
    blue, red = colour_histogram(stripes(True)), colour_histogram(stripes(True, colour=(200, 20, 20)))
    assert float(blue @ colour_histogram(stripes(False))) > 0.99  # colour only
    assert float(blue @ red) < 0.9


def test_features_barely_change_when_the_photo_is_resized():
    image = stripes(True)
    a = baseline_features(image)
    b = baseline_features(image.resize((90, 90), Image.Resampling.BILINEAR))
    assert float(a @ b) > 0.9
