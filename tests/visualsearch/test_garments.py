"""Garment localisation on generated flat-lays (no person: the foreground components).

Items lying flat are found by the learned segmenter (``visualsearch.segmenter``, shipped),
except in drawings in flat colours, which the colour rule reads (``garments.is_drawing``: the
segmenter learned garments from photos and punches holes in a flat fill wider than its
receptive field); where the segmenter is off, the colour rule reads everything. Most photos
here are such drawings, so a test under ``locator`` holds for the shipped locator and for the
colour rule alone; the segmenter's own path is tested with a fixed mask on a grainy surface
(``fake_segmenter``). How well it finds real garments is measured on the shared data
(tests/lab/evaluation/test_looks_segmenter.py, ``evaluate_looks``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from tests.visualsearch.embedding.helpers import jpeg_roundtrip
from visualsearch import garments, segmenter
from visualsearch.garments import MIN_ITEM_AREA, MIN_MAIN_ITEM_AREA, iou, locate_garments, locate_worn_garments
from visualsearch.segmenter import ENV_SEGMENTER


@pytest.fixture
def colour_rule(monkeypatch):
    monkeypatch.setenv(ENV_SEGMENTER, "off")


@pytest.fixture(params=["segmenter", "colour rule"])
def locator(request, monkeypatch):
    if request.param == "colour rule":
        monkeypatch.setenv(ENV_SEGMENTER, "off")
    else:
        monkeypatch.delenv(ENV_SEGMENTER, raising=False)
        assert segmenter.segmenter_active() is not None
    return request.param


def sheet(size=(900, 1200), seed=0, grain=4.0) -> Image.Image:
    """A pale, slightly noisy bed sheet (``grain``: the noise's spread in levels; at 4 it is
    smooth at the locator's scale, like a drawing's background)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(228, grain, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    pixels[..., 2] = np.clip(pixels[..., 2].astype(int) - 10, 0, 255)  # a warm white
    return Image.fromarray(pixels)


def test_each_item_of_a_flat_lay_is_found_even_a_small_one(locator):
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


def test_a_sandal_of_straps_beside_a_garment_is_found(locator):
    """A sandal is mostly straps: its own pixels are ~1.5 % of the photo although its box is
    larger (it was under the 2 % floor until 2026-12-06)."""
    photo = sheet(seed=7)
    draw = ImageDraw.Draw(photo)
    top = (80, 90, 520, 640)
    draw.rectangle(top, fill=(40, 60, 150))
    sandal = (560, 860, 860, 1060)  # 300x200 px box; a sole and three straps
    draw.rectangle((560, 1040, 860, 1060), fill=(120, 60, 30))
    for x in (600, 690, 780):
        draw.rectangle((x, 860, x + 25, 1040), fill=(120, 60, 30))
    assert MIN_ITEM_AREA <= (300 * 20 + 3 * 25 * 180) / (900 * 1200) < MIN_MAIN_ITEM_AREA
    regions = locate_garments(photo)
    for truth in (top, sandal):
        assert max(iou(r.box, truth) for r in regions) >= 0.5, (truth, regions)


def test_a_small_thing_is_an_item_beside_a_garment_but_not_alone(locator):
    """Alone, so small a thing (a sock, a speck of a pattern) is not searched instead of the photo."""
    small = (600, 900, 720, 1000)  # 1.1 % of the photo
    assert MIN_ITEM_AREA <= (120 * 100) / (900 * 1200) < MIN_MAIN_ITEM_AREA
    beside, alone = sheet(seed=9), sheet(seed=9)
    ImageDraw.Draw(beside).rectangle((80, 90, 520, 640), fill=(40, 60, 150))
    for photo in (beside, alone):
        ImageDraw.Draw(photo).rectangle(small, fill=(200, 60, 40))
    assert max(iou(r.box, small) for r in locate_garments(beside)) >= 0.5
    assert locate_garments(alone) == []


def test_a_garment_filling_the_photo_is_the_photo_even_with_a_small_thing_beside_it(locator):
    """Its box covers more than FILLS_PHOTO of the photo: the photo is the item, whatever
    small thing lies in a gap of it (until 2026-12-06 only a lone item counted)."""
    photo = sheet(seed=8)
    draw = ImageDraw.Draw(photo)
    draw.rectangle((40, 40, 860, 1160), fill=(150, 30, 40))  # 87 % of the photo ...
    draw.rectangle((355, 505, 545, 695), fill=(228, 228, 218))  # ... around an open gap (the sheet shows)
    draw.rectangle((395, 545, 505, 655), fill=(20, 20, 20))  # a sock in the gap: 1.1 %
    assert locate_garments(photo) == []


def test_a_pastel_item_on_a_pale_sheet_is_found(locator):
    photo = sheet(seed=1)
    box = (200, 300, 700, 900)
    ImageDraw.Draw(photo).rectangle(box, fill=(236, 200, 212))  # pale pink, 18.6 Lab units from the sheet
    regions = locate_garments(photo)
    assert regions and max(iou(r.box, box) for r in regions) >= 0.5


def test_crumbs_and_a_plain_sheet_are_not_items(locator):
    photo = sheet(seed=2)
    draw = ImageDraw.Draw(photo)
    for x in range(100, 800, 140):
        draw.rectangle((x, 500, x + 20, 520), fill=(90, 90, 90))  # 0.04 % each
    assert locate_garments(photo) == []
    assert locate_garments(sheet(seed=3)) == []
    assert locate_worn_garments(photo) == []  # nobody in the photo


def test_a_garment_touching_the_border_is_the_item_not_the_background(locator):
    # A hoodie photographed close: its body runs off the left and right edges, so its navy
    # is a third of the border's colours; only its white print would stand out from that.
    photo = sheet(seed=4)
    draw = ImageDraw.Draw(photo)
    body = (0, 300, 900, 1000)
    draw.rectangle(body, fill=(30, 40, 90))
    draw.rectangle((380, 520, 520, 600), fill=(245, 245, 245))  # the print: 1 % of the photo
    regions = locate_garments(photo)
    assert regions, "the hoodie was taken for background"
    assert iou(regions[0].box, body) >= 0.8, regions


def test_an_item_in_the_middle_of_a_two_coloured_background_is_still_found(locator):
    # A rug under half the border: two background colours, the item on the lighter one.
    photo = sheet(seed=5)
    draw = ImageDraw.Draw(photo)
    draw.rectangle((0, 700, 900, 1200), fill=(150, 110, 80))  # the rug: 42 % of the photo
    item = (300, 250, 600, 550)
    draw.rectangle(item, fill=(40, 130, 60))
    regions = locate_garments(photo)
    assert regions and max(iou(r.box, item) for r in regions) >= 0.5, regions
    assert all(iou(r.box, (0, 700, 900, 1200)) < 0.5 for r in regions)  # the rug stays background


def test_two_garments_lying_a_few_pixels_apart_are_two_items(locator):
    # 30 px apart in a 1,200-px photo: 4 px at the size items are found at, which the
    # gap closing bridges; their own pixels are apart, so they are two items, not one.
    photo = sheet(seed=4)
    draw = ImageDraw.Draw(photo)
    top, trousers = (80, 150, 420, 600), (450, 150, 800, 1000)
    draw.rectangle(top, fill=(40, 60, 150))
    draw.rectangle(trousers, fill=(60, 50, 40))
    regions = locate_garments(photo)
    for truth in (top, trousers):
        assert max(iou(r.box, truth) for r in regions) >= 0.5, (truth, regions)


def test_a_garment_cut_by_a_seam_of_the_sheets_colour_stays_one_item(locator):
    # Shoulders and a sleeve (one piece) wrap the body, separated from it by a thin line of
    # the sheet's colour: the two parts' boxes overlap, so it is one garment.
    photo = sheet(seed=5)
    draw = ImageDraw.Draw(photo)
    colour = (150, 30, 50)
    draw.rectangle((200, 200, 700, 300), fill=colour)  # shoulders
    draw.rectangle((200, 300, 290, 650), fill=colour)  # a sleeve hanging from them
    draw.rectangle((300, 312, 600, 850), fill=colour)  # the body, 12 px below the shoulders
    regions = locate_garments(photo)
    assert len(regions) == 1
    assert iou(regions[0].box, (200, 200, 700, 850)) >= 0.8


def test_an_item_lying_flat_is_searched_with_a_margin_of_its_surroundings(locator):
    from visualsearch.garments import ITEM_CONTEXT, search_box

    photo = sheet(seed=6)  # a drawing: the colour rule finds its item under either locator
    ImageDraw.Draw(photo).rectangle((100, 200, 300, 600), fill=(40, 60, 150))  # 200 x 400
    (region,) = locate_garments(photo)
    assert region.context == ITEM_CONTEXT and iou(region.box, (100, 200, 300, 600)) >= 0.7  # its drawn box has a margin of its own
    box = (100, 200, 300, 600)
    grown = search_box(box, 900, 1200, region.context)
    assert grown == (100 - int(200 * ITEM_CONTEXT), 200 - int(400 * ITEM_CONTEXT), 300 + int(200 * ITEM_CONTEXT), 600 + int(400 * ITEM_CONTEXT))
    assert search_box((0, 0, 900, 1200), 900, 1200, ITEM_CONTEXT) == (0, 0, 900, 1200)  # never off the photo
    assert search_box(box, 900, 1200, 0.0) == box  # a worn garment's region (context 0) is searched as it is


def test_an_item_the_segmenter_found_is_searched_as_found(monkeypatch):
    from visualsearch.garments import ITEM_CONTEXT_LEARNED, search_box

    mask = np.zeros((160, 120), bool)
    mask[40:120, 27:80] = True
    fake_segmenter(monkeypatch, mask)
    (region,) = locate_garments(grainy())
    assert region.context == ITEM_CONTEXT_LEARNED == 0.0
    assert search_box(region.box, 900, 1200, region.context) == region.box


def fake_segmenter(monkeypatch, mask: np.ndarray):
    """The segmenter answering ``mask`` (at the locator's thumbnail size), to test what the
    locator makes of a foreground whatever found it."""

    class Fixed:
        name = "fixed"

        def foreground(self, pixels):
            assert pixels.shape[:2] == mask.shape
            return mask.astype(np.float32)

    monkeypatch.setattr(garments, "segmenter_active", lambda: Fixed())


def grainy(seed=0) -> Image.Image:
    """A surface with a photo's grain: not a drawing, so the segmenter reads it."""
    photo = sheet(seed=seed, grain=24.0)
    assert not garments.is_drawing(garments.item_pixels(photo))
    return photo


def test_the_segmenters_foreground_becomes_items_largest_first(monkeypatch):
    mask = np.zeros((160, 120), bool)  # a 900 x 1200 photo read at 120 x 160
    mask[10:80, 10:60] = True  # a top
    mask[90:150, 70:110] = True  # trousers beside it
    mask[100:103, 10:13] = True  # a crumb: under MIN_ITEM_AREA
    fake_segmenter(monkeypatch, mask)
    regions = locate_garments(grainy())
    assert [r.kind for r in regions] == ["item", "item"]
    assert iou(regions[0].box, (75, 75, 450, 600)) >= 0.8 and iou(regions[1].box, (525, 675, 825, 1125)) >= 0.8


def test_a_garment_the_segmenter_finds_filling_the_photo_is_the_photo(monkeypatch):
    mask = np.zeros((160, 120), bool)
    mask[3:157, 3:117] = True  # 91 % of the photo's area in its box
    fake_segmenter(monkeypatch, mask)
    assert locate_garments(grainy()) == []


def _noisy(photo: Image.Image, spread: float, seed: int = 0) -> Image.Image:
    pixels = np.asarray(photo, dtype=np.float32) + np.random.default_rng(seed).normal(0, spread, (photo.height, photo.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_a_pixel_is_flat_when_its_whole_neighbourhood_is_within_the_tolerance():
    pixels = np.full((10, 10, 3), 100, np.uint8)  # 8 x 8 pixels counted: the rim is not
    pixels[5, 5, 1] += garments.DRAWING_TOLERANCE
    assert garments.flat_share(pixels) == 1.0
    pixels[5, 5, 1] += 1  # now the 9 pixels around it see a step of more than the tolerance
    assert garments.flat_share(pixels) == (64 - 9) / 64
    assert garments.flat_share(np.full((10, 10, 3), 255, np.uint8)) == 0.0  # studio white only: nothing to judge


@pytest.mark.parametrize("spread", [0.0, 4.0])
def test_a_drawing_is_read_by_the_colour_rule_even_noisy_and_compressed(monkeypatch, spread):
    """A segmenter answering nothing is not asked: the drawing's garments come from the colour rule."""
    fake_segmenter(monkeypatch, np.zeros((160, 120), bool))
    photo = sheet(seed=4)
    draw = ImageDraw.Draw(photo)
    top, trousers = (80, 150, 420, 600), (450, 150, 800, 1000)
    draw.rectangle(top, fill=(40, 60, 150))
    draw.rectangle(trousers, fill=(60, 50, 40))
    photo = jpeg_roundtrip(_noisy(photo, spread), quality=85)
    pixels = garments.item_pixels(photo)
    assert garments.flat_lay_foreground(pixels)[1] == "colour rule"
    regions = locate_garments(photo)
    for truth in (top, trousers):
        assert max(iou(r.box, truth) for r in regions) >= 0.5, (truth, regions)


def test_a_photo_goes_to_the_segmenter_and_studio_white_makes_no_drawing(monkeypatch):
    mask = np.zeros((160, 120), bool)
    mask[40:120, 27:80] = True
    fake_segmenter(monkeypatch, mask)
    assert garments.flat_lay_foreground(garments.item_pixels(grainy()))[1] == "segmenter"
    # A studio shot: a patterned garment on pure white. The white is flat but is no drawing's fill.
    studio = Image.new("RGB", (900, 1200), (255, 255, 255))
    pattern = np.random.default_rng(3).integers(0, 255, (600, 400, 3), dtype=np.uint8)
    studio.paste(Image.fromarray(pattern).filter(ImageFilter.GaussianBlur(2)), (250, 300))
    assert garments.flat_share(garments.item_pixels(studio)) < garments.DRAWING_FLAT_SHARE
    assert garments.flat_lay_foreground(garments.item_pixels(studio))[1] == "segmenter"
    # The same garment in one flat colour on that white is a drawing.
    ImageDraw.Draw(studio).rectangle((250, 300, 650, 900), fill=(200, 30, 30))
    assert garments.flat_lay_foreground(garments.item_pixels(studio))[1] == "colour rule"


@pytest.mark.django_db
def test_the_kept_search_embeds_each_item_with_its_margin(locator):
    from visualsearch import looks
    from visualsearch.embedding import load_embedder
    from visualsearch.garments import search_box

    photo = sheet(seed=6)
    ImageDraw.Draw(photo).rectangle((200, 300, 600, 900), fill=(40, 60, 150))
    search = looks.look_create(photo=photo)  # 900 x 1200: kept at this size (under STORED_SIDE)
    item = search.items[1]
    assert item["kind"] == "item" and (search.width, search.height) == photo.size
    box = tuple(item["box"])
    embedder = load_embedder(search.model_name)
    assert item["context"] == garments.ITEM_CONTEXT  # a drawing: the colour rule's item, with its margin
    grown, tight = embedder.embed([photo.crop(search_box(box, *photo.size, item["context"])), photo.crop(box)])
    vector = np.asarray(item["vector"])
    np.testing.assert_allclose(vector, grown, atol=2e-5)
    assert not np.allclose(vector, tight, atol=2e-5)


@pytest.mark.django_db
def test_the_kept_search_embeds_what_the_segmenter_found(monkeypatch):
    from visualsearch import looks
    from visualsearch.embedding import load_embedder

    mask = np.zeros((160, 120), bool)
    mask[40:120, 27:80] = True
    fake_segmenter(monkeypatch, mask)
    photo = grainy(seed=6)
    search = looks.look_create(photo=photo)
    item = search.items[1]
    assert item["kind"] == "item"
    box = tuple(item["box"])
    assert iou(box, (202, 300, 600, 900)) >= 0.8 and item["context"] == 0.0
    (found,) = load_embedder(search.model_name).embed([photo.crop(box)])
    np.testing.assert_allclose(np.asarray(item["vector"]), found, atol=2e-5)


def test_graphs_are_lent_one_photo_at_a_time_and_no_more_are_built_than_allowed(monkeypatch):
    """Concurrent threads share at most ``size`` graphs, never one graph at once, and the
    graphs made are kept for the threads that come after."""
    import threading
    import time

    from visualsearch import garments

    busy: set[int] = set()
    overlaps: list[int] = []
    peak = [0]
    guard = threading.Lock()

    class Graph:
        def process(self, pixels):
            with guard:
                if id(self) in busy:
                    overlaps.append(id(self))
                busy.add(id(self))
                peak[0] = max(peak[0], len(busy))
            time.sleep(0.01)
            with guard:
                busy.discard(id(self))
            return pixels.sum()

    models = garments._Models(size=2)
    built: list[Graph] = []
    monkeypatch.setattr(models, "_new", lambda: built.append(Graph()) or built[-1])
    pixels = np.ones((4, 4, 3), dtype=np.uint8)
    threads = [threading.Thread(target=lambda: [models.run(pixels) for _ in range(5)]) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 2 and peak[0] == 2 and not overlaps
    models.run(pixels)  # a later thread reuses them
    assert len(built) == 2


def test_a_graph_that_cannot_be_built_frees_its_place(monkeypatch):
    from visualsearch import garments

    models = garments._Models(size=1)
    monkeypatch.setattr(models, "_new", lambda: (_ for _ in ()).throw(RuntimeError("no graph")))
    with pytest.raises(RuntimeError, match="no graph"):
        models.run(np.ones((2, 2, 3), dtype=np.uint8))
    assert models.made == 0  # the next call may try again instead of waiting forever
