"""Generated catalogue-style photos (a garment on white) and the edits re-listers make."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageEnhance

TEE = [(150, 110), (250, 80), (350, 80), (450, 110), (560, 250), (480, 310), (440, 260), (440, 700), (160, 700), (160, 260), (120, 310), (40, 250)]
TROUSERS = [(180, 80), (420, 80), (450, 720), (330, 720), (300, 300), (270, 720), (150, 720)]


def photo(*, shape=TEE, colour=(196, 40, 48), print_seed: int = 1, size=(600, 800)) -> Image.Image:
    """A garment silhouette with a print of random blocks (the seed picks the design)."""
    img = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(img)
    draw.polygon(shape, fill=colour, outline=(60, 60, 60))
    rng = random.Random(print_seed)
    for _ in range(14):
        x, y = rng.randint(180, 400), rng.randint(150, 620)
        w, h = rng.randint(20, 90), rng.randint(10, 60)
        shade = tuple(min(255, max(0, c + rng.randint(-120, 120))) for c in colour)
        draw.rectangle([x, y, x + w, y + h], fill=shade)
    return img.resize(size) if size != (600, 800) else img


def jpeg(image: Image.Image, *, quality: int = 88) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def relisted_copy(image: Image.Image) -> Image.Image:
    """What a re-lister does: crop a little of the white margin, resize, brighten slightly."""
    w, h = image.size
    cropped = image.crop((int(w * 0.03), int(h * 0.02), w - int(w * 0.03), h - int(h * 0.02)))
    resized = cropped.resize((360, 480), Image.Resampling.BICUBIC)
    return ImageEnhance.Brightness(resized).enhance(1.04)
