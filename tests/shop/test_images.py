"""shop.images: the one place that decides which image bytes are accepted (issue 7).

The corpus (tests/upload_corpus.py) runs through ``image_check`` and ``image_decode_rgb``
here; the same corpus goes through every upload path in tests/visualsearch/test_uploads.py,
tests/shop/test_admin.py and tests/shop/test_import_catalog.py. The fuzz tests feed random
bytes and mutated valid images: the only outcomes allowed are "accepted, as 8-bit RGB" and
``ImageRejected`` with a message.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from PIL import Image

from shop.images import CheckedImage, ImageRejected, image_check, image_decode_rgb
from tests import upload_corpus
from tests.factories import make_image_bytes
from tests.upload_corpus import corpus

CASES = corpus()
# Pillow warns about the corrupt EXIF blocks the corpus and the fuzzer make; shop.images ignores them.
pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corpus(case):
    if case.accepted:
        checked = image_check(case.data, name=case.name, content_type=case.content_type)
        assert isinstance(checked, CheckedImage)
        assert checked.format in {"JPEG", "PNG", "WEBP"}
        checked, image = image_decode_rgb(case.data, name=case.name, content_type=case.content_type)
        assert image.mode == "RGB"
        assert image.size == case.size
        assert not image.info  # orientation applied once; nothing downstream rotates it again
    else:
        with pytest.raises(ImageRejected) as refused:
            image_check(case.data, name=case.name, content_type=case.content_type)
        assert case.message in str(refused.value)
        if case.declared_only:  # what the photo searches do: the content alone decides
            assert image_decode_rgb(case.data)[1].size == case.size


def test_bombs_are_refused_from_the_header_without_decoding(monkeypatch):
    decoded = []
    original_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or original_load(self))
    for case_id in ("png-bomb-30000x30000", "png-header-claims-8000x6000", "gif-bomb"):
        started = time.perf_counter()
        with pytest.raises(ImageRejected, match="too large|Unsupported"):
            image_check(upload_corpus.case(case_id).data)
        assert time.perf_counter() - started < 0.5
    assert decoded == []


def test_the_caps_are_settings(settings):
    data = make_image_bytes(size=(100, 100))
    settings.SHOP_MAX_UPLOAD_BYTES = len(data) - 1
    with pytest.raises(ImageRejected, match="larger than"):
        image_check(data)
    settings.SHOP_MAX_UPLOAD_BYTES = len(data)
    settings.SHOP_MAX_IMAGE_PIXELS = 100 * 100 - 1
    with pytest.raises(ImageRejected, match=r"too large \(100x100 pixels; at most 0.009999 megapixels\)"):
        image_check(data)
    settings.SHOP_MAX_IMAGE_PIXELS = 100 * 100
    assert image_check(data).width == 100


def test_conversions_for_the_embedder():
    def first_pixel(case_id):
        return image_decode_rgb(upload_corpus.case(case_id).data)[1].getpixel((0, 0))

    assert first_pixel("cmyk-jpeg") == (255, 0, 0)  # CMYK red is RGB red
    assert first_pixel("png-16-bit") == (128, 128, 128)  # scaled to 8 bits, not clipped to white
    assert first_pixel("png-rgba") == (255, 255, 255)  # transparency on white
    assert first_pixel("png-la") == (255, 255, 255)
    assert first_pixel("png-palette-transparency") == (255, 255, 255)
    assert first_pixel("greyscale-jpeg") == (90, 90, 90)
    assert first_pixel("animated-png") == (255, 0, 0)  # the first frame
    assert first_pixel("animated-webp") == (255, 0, 0)
    assert image_check(upload_corpus.case("animated-png").data).frames == 3


def test_exif_orientation_is_applied_once():
    checked, image = image_decode_rgb(upload_corpus.exif_jpeg(orientation=6, padding=10))
    assert (checked.width, checked.height) == (40, 30)  # as stored
    assert image.size == (30, 40)  # upright
    assert image.getexif().get(0x0112) is None


def test_the_extension_of_the_stored_file_comes_from_the_content():
    png = make_image_bytes(fmt="PNG")
    assert image_check(png).extension == "png"
    assert image_check(png, name="upload", content_type="application/octet-stream").extension == "png"
    assert image_check(make_image_bytes(fmt="WEBP"), name="x.WEBP", content_type="image/webp").extension == "webp"
    assert image_check(make_image_bytes(), name="IMG 2024.01.05", content_type="image/jpeg").extension == "jpg"


# Fuzzing ---------------------------------------------------------------------------------
# Deterministic (derandomize) and bounded, so CI sees the same examples every run.

FUZZ = hypothesis_settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def valid_images() -> list[bytes]:
    return [
        make_image_bytes(size=(48, 40), pattern=5),
        make_image_bytes(size=(48, 40), pattern=3, fmt="PNG"),
        make_image_bytes(size=(48, 40), pattern=4, fmt="WEBP"),
        upload_corpus.cmyk_jpeg(),
        upload_corpus.png16(),
        upload_corpus.palette_png_with_transparency(),
        upload_corpus.exif_jpeg(padding=200),
        upload_corpus.animated_png(),
        upload_corpus.animated_webp(),
        make_image_bytes(size=(48, 40), pattern=2, fmt="JPEG")[:2] + b"\xff\xfe\x00\x05abc" + make_image_bytes(size=(48, 40))[2:],
    ]


MAGICS = [b"", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x01\x00\x00WEBPVP8 ",
          b"RIFF\x00\x01\x00\x00WEBPVP8L", b"RIFF\x00\x01\x00\x00WEBPVP8X", b"GIF89a", b"PK\x03\x04"]


@st.composite
def mutated_image(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(valid_images())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "delete", "duplicate", "header"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 256))]
        elif kind == "header" and len(data) > 32:  # the header fields: sizes, modes, chunk lengths
            data[draw(st.integers(2, 32))] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
    return bytes(data)


def random_bytes():
    return st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGICS), st.binary(max_size=2048))


def assert_accepted_or_refused(data: bytes) -> None:
    try:
        checked, image = image_decode_rgb(data)
    except ImageRejected as exc:
        assert str(exc)
        return
    assert checked.format in {"JPEG", "PNG", "WEBP"} and checked.data == data
    assert image.mode == "RGB" and image.size[0] * image.size[1] <= 40_000_000


@FUZZ
@given(data=random_bytes())
def test_fuzz_random_bytes_are_accepted_or_refused_never_crash(data):
    assert_accepted_or_refused(data)


@FUZZ
@given(data=mutated_image())
def test_fuzz_mutated_images_are_accepted_or_refused_never_crash(data):
    assert_accepted_or_refused(data)
