import io

import numpy as np
from PIL import Image, ImageDraw

from lab.synthetic import OUTPUT_LONG_SIDE, consumer_view


def catalogue_photo() -> Image.Image:
    """A white studio shot of a red garment-like shape."""
    image = Image.new("RGB", (224, 224), "white")
    ImageDraw.Draw(image).polygon([(70, 30), (154, 30), (190, 80), (160, 95), (160, 200), (64, 200), (64, 95), (34, 80)], fill=(180, 30, 40))
    return image


def pixels(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_same_seed_and_item_give_identical_pixels():
    photo = catalogue_photo()
    assert pixels(consumer_view(photo, 0, "10001")) == pixels(consumer_view(photo, 0, "10001"))


def test_seed_and_item_id_change_the_view():
    photo = catalogue_photo()
    base = pixels(consumer_view(photo, 0, "10001"))
    assert pixels(consumer_view(photo, 1, "10001")) != base
    assert pixels(consumer_view(photo, 0, "10002")) != base


def test_view_is_a_phone_like_photo_without_the_white_background():
    view = consumer_view(catalogue_photo(), 3, "42")
    assert view.mode == "RGB"
    assert view.height > view.width  # portrait crop of a 3:4 canvas
    assert view.height <= OUTPUT_LONG_SIDE[1]
    arr = np.asarray(view)
    assert (arr >= 245).all(axis=2).mean() < 0.05  # the studio white is gone
    # The garment is still there: a good share of clearly red pixels.
    red = (arr[..., 0].astype(int) - arr[..., 2].astype(int)) > 60
    assert red.mean() > 0.05
