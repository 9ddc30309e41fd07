"""The one place that decides which image bytes are accepted.

Every way in goes through :func:`image_check`: the storefront's "Shop the look" form and
``POST /api/search/image`` (via ``visualsearch.forms.photo_open``), the admin's image
upload (``shop.admin.ProductImageAdminForm``) and ``manage.py import_catalog``. The rules:

* at most ``settings.SHOP_MAX_UPLOAD_BYTES`` bytes (env ``SHOP_MAX_UPLOAD_BYTES``, 20 MB);
* the format is recognised from the bytes (magic numbers), never from the name: JPEG, PNG
  or WebP only, and Pillow is then only allowed to decode that one format (no other
  plugin ever sees uploaded bytes; GIF, TIFF, BMP, HEIC, SVG, ... are refused by name);
* where the caller passes what the uploader declared (the catalogue's ways in: admin and
  import, whose files are stored), the file name and an image content type must agree
  with the content: a PNG named ``photo.jpg`` or sent as ``image/jpeg`` is refused with a
  message that says so (a name without an extension, or a non-image content type such as
  ``application/octet-stream``, declares nothing). The photo searches pass nothing: their
  photo is never stored and its name never used. The stored file's extension always
  comes from the content (``CheckedImage.extension``), never from the name;
* at most ``settings.SHOP_MAX_IMAGE_PIXELS`` pixels (env, 40 MP), checked from the header
  before anything is decoded, so a decompression bomb (a 30000x30000 PNG of a few
  hundred KB) never allocates its pixels; Pillow's own bomb error is reported the same way;
* a JPEG has at most ``JPEG_MAX_SCANS`` scans, and scans x pixels at most
  ``JPEG_MAX_SCAN_PIXELS``, counted from the byte stream before anything is decoded: a
  progressive JPEG of a few KB that repeats its scans thousands of times makes libjpeg
  decode every coefficient again for each one (seconds of CPU; see the constants);
* a full decode of the (first) frame: truncated or corrupt files are refused here, not
  later in a worker;
* animated PNG/WebP are accepted and their first frame is what gets searched and
  embedded (``CheckedImage.frames`` says how many the file claims; the others are never
  decoded).

:func:`image_decode_rgb` turns accepted bytes into what the embedder wants: the first
frame, upright (EXIF orientation; an unreadable EXIF block is ignored, not fatal), 8-bit
RGB: greyscale, palette, CMYK and 16-bit images converted, transparency composited on
white (catalogue photos have white backgrounds).

Every refusal is an :class:`ImageRejected` whose message is meant for the uploader.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
# What a declared file name or content type may say for each accepted format.
EXTENSION_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "jfif": "JPEG", "png": "PNG", "apng": "PNG", "webp": "WEBP"}
CONTENT_TYPE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/x-png": "PNG",
    "image/apng": "PNG",
    "image/webp": "WEBP",
}
ACCEPTED = "use JPEG, PNG or WebP"
NOT_READABLE = "The file is not a readable image."

# Recognised only to say clearly what the file is; none of these is ever decoded.
_OTHER_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
)
_NOT_IMAGES = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
WHITE = (255, 255, 255)

# Progressive JPEG "scan bombs". libjpeg decodes each scan (SOS segment) over every block
# of the components it covers, so the cost is about scans x pixels, whatever the file
# size: a 38 KB, 2000x2000 progressive JPEG whose last scan is repeated 1,000 times costs
# 2.4 to 3.7 s of CPU to decode, a 224 KB 6000x6000 one with 210 scans 5.7 to 7 s and a
# 270 KB one with 1,010 scans 23 to 26 s (Pillow 11.3's libjpeg-turbo, one core of the
# development machine; the untouched files, 10 scans, take 0.03 s and 0.3 s). Refused by
# the count below, each costs under 1 ms (tests/upload_corpus.py builds them). Legitimate files have few scans: baseline JPEG (cameras, phones) 1, or one
# per component; libjpeg's / Pillow's progressive mode 10 for colour, 6 for greyscale and
# 18 for CMYK (jpeg_simple_progression); Photoshop's "Progressive" 3 to 5; mozjpeg's
# optimised scripts about 10. 100 leaves a wide margin over all of these, and libjpeg-
# turbo's own tools use the same kind of cap (djpeg -maxscans, TJPARAM_SCANLIMIT).
JPEG_MAX_SCANS = 100
# A large image with fewer than 100 scans can still cost seconds (scans x pixels): allow
# what the largest legitimate file costs, a 120 MP search photo (SHOP_MAX_SEARCH_PHOTO_PIXELS)
# in 12 scans, about 1 s of CPU; a 40 MP catalogue image may then have 36 scans.
JPEG_MAX_SCAN_PIXELS = 12 * 120_000_000
# The next marker after a scan's entropy-coded data: 0xFF followed by anything but a
# stuffed 0x00, a restart marker (RST0-7, part of the scan) or another 0xFF (a fill byte:
# the match is then the last 0xFF of the run). No "\xff+": re scans 17x slower with it.
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why, for the user."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    format: str  # "JPEG", "PNG" or "WEBP": what the bytes are, whatever they were called
    width: int
    height: int
    frames: int = 1  # > 1 for animated PNG/WebP; only the first frame is ever used

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


def max_upload_bytes() -> int:
    return int(settings.SHOP_MAX_UPLOAD_BYTES)


def max_image_pixels() -> int:
    return int(settings.SHOP_MAX_IMAGE_PIXELS)


def max_search_photo_pixels() -> int:
    return int(settings.SHOP_MAX_SEARCH_PHOTO_PIXELS)


def upload_request_max_bytes() -> int:
    """The largest request body an upload view reads: the photo plus 1 MB for the rest of the form."""
    return max_upload_bytes() + 1024 * 1024


def _megabytes(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{round(mb, 1):g} MB" if mb >= 1 else f"{n} bytes"


def too_large_message() -> str:
    return f"The file is larger than {_megabytes(max_upload_bytes())}."


def _too_many_pixels(width: int | None = None, height: int | None = None) -> ImageRejected:
    limit = f"at most {max_image_pixels() / 1e6:g} megapixels"
    size = f"{width}x{height} pixels; " if width and height else ""
    return ImageRejected(f"The image is too large ({size}{limit}).")


def _bomb(data: bytes, fmt: str) -> ImageRejected:
    """Pillow refused to even open it (more than twice its own pixel limit): say how big it claims to be."""
    if fmt == "PNG" and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return _too_many_pixels(width, height)
    return _too_many_pixels()


def sniff_format(data: bytes) -> str | None:
    """"JPEG", "PNG" or "WEBP" from the first bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _unsupported(data: bytes) -> ImageRejected:
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return ImageRejected(f"Unsupported image format {name}; {ACCEPTED}.")
    if data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis", b"hevc"}:
        name = "AVIF" if data[8:12] in {b"avif", b"avis"} else "HEIC"
        return ImageRejected(f"Unsupported image format {name}; {ACCEPTED}.")
    if data[:2] == b"BM" and len(data) > 26 and data[6:10] == b"\x00\x00\x00\x00":
        return ImageRejected(f"Unsupported image format BMP; {ACCEPTED}.")
    for signature, what in _NOT_IMAGES:
        if data.startswith(signature):
            return ImageRejected(f"{NOT_READABLE} It is {what}; {ACCEPTED}.")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return ImageRejected(f"Unsupported image format SVG; {ACCEPTED}.")
    return ImageRejected(NOT_READABLE)


def jpeg_scan_count(data: bytes, *, stop_after: int | None = None) -> int:
    """How many scans (SOS segments) the first image of a JPEG byte stream has.

    Walks the marker segments by their lengths (so an EXIF thumbnail inside APP1 is not
    counted) and skips each scan's entropy-coded data; stops at EOI, at the end of the
    data, at anything malformed (Pillow then decides whether the file is readable), or
    once the count exceeds ``stop_after``.
    """
    scans, i, end = 0, 2, len(data)  # after SOI
    while i + 1 < end:
        if data[i] != 0xFF:
            break
        while i + 1 < end and data[i + 1] == 0xFF:  # fill bytes before a marker
            i += 1
        if i + 1 >= end:
            break
        marker = data[i + 1]
        if marker == 0xD9:  # EOI: whatever follows (an MPO's second picture) is not this image
            break
        if marker in _JPEG_STANDALONE_MARKERS:
            i += 2
            continue
        if i + 4 > end:
            break
        segment_end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker != 0xDA:
            i = segment_end
            continue
        scans += 1
        if stop_after is not None and scans > stop_after:
            break
        following = _JPEG_MARKER_AFTER_SCAN.search(data, segment_end)
        if following is None:
            break
        i = following.start()
    return scans


def _jpeg_scan_bomb(data: bytes, width: int, height: int) -> ImageRejected | None:
    limit = min(JPEG_MAX_SCANS, max(1, JPEG_MAX_SCAN_PIXELS // (width * height)))
    scans = jpeg_scan_count(data, stop_after=limit)
    if scans <= limit:
        return None
    logger.info("image refused: JPEG %dx%d with more than %d scans", width, height, limit)
    return ImageRejected(
        f"The JPEG has too many progressive scans (more than {limit} for {width}x{height} pixels); "
        "save it again as a standard (baseline or progressive) JPEG."
    )


def _looks_like_extension(ext: str) -> bool:
    return 1 <= len(ext) <= 10 and ext.isascii() and ext.isalnum() and not ext.isdigit()


def _declared_mismatch(fmt: str, *, name: str | None, content_type: str | None) -> ImageRejected | None:
    """A message when the uploader's file name or content type says something else than the bytes."""
    actual = FORMAT_NAMES[fmt]
    if name:
        base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().rstrip(".")
        if "." in base.lstrip("."):
            ext = base.rsplit(".", 1)[-1].strip().lower()
            declared = EXTENSION_FORMATS.get(ext)
            if declared is None and _looks_like_extension(ext):  # not "IMG 2024.01.05"
                return ImageRejected(
                    f"Files named .{ext[:12]} are not accepted: this one holds a {actual} image, so name it .{FORMAT_EXTENSIONS[fmt]}."
                )
            if declared is not None and declared != fmt:
                return ImageRejected(
                    f"The file is named .{ext} but holds a {actual} image; rename it .{FORMAT_EXTENSIONS[fmt]} "
                    f"or save it as {FORMAT_NAMES[declared]}."
                )
    if content_type:
        kind = content_type.split(";", 1)[0].strip().lower()
        declared = CONTENT_TYPE_FORMATS.get(kind)
        if kind.startswith("image/") and declared != fmt:
            return ImageRejected(f"The file was sent as {kind[:40]} but holds a {actual} image.")
    return None


def _open(data: bytes, fmt: str) -> Image.Image:
    """Pillow's lazy open (header only), restricted to the sniffed format."""
    try:
        return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise _bomb(data, fmt) from None
    except Exception as exc:  # untrusted bytes: any decoder error is a refusal, never a 500
        raise ImageRejected(NOT_READABLE) from exc


def _inspect(
    data: bytes, *, name: str | None, content_type: str | None, max_side: int | None = None
) -> tuple[CheckedImage, Image.Image]:
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_upload_bytes():
        raise ImageRejected(too_large_message())
    fmt = sniff_format(data)
    if fmt is None:
        raise _unsupported(data)
    if mismatch := _declared_mismatch(fmt, name=name, content_type=content_type):
        raise mismatch
    image = _open(data, fmt)
    try:
        if image.format != fmt:  # cannot happen with formats=[fmt]; kept as the rule itself
            raise ImageRejected(NOT_READABLE)
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageRejected(NOT_READABLE)
        if max_side and fmt == "JPEG" and width * height <= max_search_photo_pixels():
            # JPEG decodes at 1/2, 1/4 or 1/8 scale for the cost of that size: a 64 MP phone
            # photo is read as 1,000 x 1,000 and never held in full.
            image.draft("RGB", (max_side, max_side))
        elif width * height > max_image_pixels():
            raise _too_many_pixels(width, height)
        if fmt == "JPEG" and (scan_bomb := _jpeg_scan_bomb(data, width, height)):
            raise scan_bomb
        frames = int(getattr(image, "n_frames", 1) or 1)
        if frames > 1:
            image.seek(0)
        image.load()  # the full decode: truncated or corrupt data fails here
    except ImageRejected:
        image.close()
        raise
    except Image.DecompressionBombError:
        image.close()
        raise _bomb(data, fmt) from None
    except Exception as exc:
        image.close()
        logger.info("image refused: %s decode failed: %r", fmt, exc)
        raise ImageRejected(NOT_READABLE) from exc
    checked = CheckedImage(
        data=data, sha256=hashlib.sha256(data).hexdigest(), format=fmt, width=width, height=height, frames=frames
    )
    return checked, image


def image_check(data: bytes, *, name: str | None = None, content_type: str | None = None) -> CheckedImage:
    """Decode ``data`` fully and return what we need to store it, or raise ImageRejected.

    ``name`` and ``content_type`` are what the uploader declared, when there is one: they
    must agree with the bytes (see the module docstring).
    """
    checked, image = _inspect(data, name=name, content_type=content_type)
    image.close()
    return checked


def _upright(image: Image.Image) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block: keep the pixels as stored
        logger.info("ignoring unreadable EXIF data")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert() clips 16-bit values at 255 (a white picture); scale instead.
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0.0) > 255.0:
            values = values / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")  # RGB (a copy), L, 1, P, CMYK, YCbCr, ...


def image_decode_rgb(
    data: bytes, *, name: str | None = None, content_type: str | None = None, max_side: int | None = None
) -> tuple[CheckedImage, Image.Image]:
    """``image_check`` plus the picture itself: the first frame, upright, 8-bit RGB.

    With ``max_side`` (photo searches, which never store the photo at full size) a JPEG is
    decoded at the smallest 1/2^n scale still at least that long, and may claim up to
    ``SHOP_MAX_SEARCH_PHOTO_PIXELS`` in its header; other formats keep the usual cap.
    The returned image carries no EXIF (its orientation is already applied), so nothing
    downstream rotates it twice.
    """
    checked, image = _inspect(data, name=name, content_type=content_type, max_side=max_side)
    try:
        rgb = _to_rgb(_upright(image))
    except Exception as exc:
        logger.info("image refused: conversion of a %s %s image failed: %r", checked.format, image.mode, exc)
        raise ImageRejected(NOT_READABLE) from exc
    finally:
        image.close()
    rgb.info = {}
    return checked, rgb
