"""The shop-the-look composites paste catalogue garments cut out of their white studio
background: the background goes, a white garment stays."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lab.evaluation.looks import studio_cutout


def test_a_white_garment_keeps_its_white_and_only_the_studio_background_goes(tmp_path):
    photo = Image.new("RGB", (300, 300), (255, 255, 255))  # studio white
    draw = ImageDraw.Draw(photo)
    draw.ellipse((60, 100, 240, 200), fill=(250, 250, 250), outline=(40, 40, 40), width=4)  # a white sneaker
    draw.rectangle((140, 140, 160, 160), fill=(200, 30, 30))  # its red logo
    path = tmp_path / "sneaker.jpg"
    photo.save(path, quality=95)
    cut = studio_cutout(path)
    alpha = np.asarray(cut.getchannel("A"))
    # Cropped to the sneaker (the photo is stretched to 3:4 first, as the catalogue's were):
    # what is left is the sneaker, its white inside included; the corners outside it are clear.
    assert abs(cut.width - 181) <= 3 and abs(cut.height - round(101 * 4 / 3)) <= 4
    inside = alpha[alpha.shape[0] // 2 - 10 : alpha.shape[0] // 2 + 10, 20:40]  # white leather, left of the logo
    assert inside.min() == 255
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
