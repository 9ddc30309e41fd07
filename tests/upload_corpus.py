"""Hostile and awkward uploads, generated (nothing is checked in): issue 7's corpus.

``CORPUS`` is a list of :class:`Case`; each one says what ``shop.images.image_check``
must do with it: accept it (``message=None``) or refuse it with a message containing
``message``. The upload tests run every case through ``image_check``, the storefront form,
``POST /api/search/image``, the admin and ``import_catalog``.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from tests.factories import make_image_bytes

NOT_READABLE = "The file is not a readable image."


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    name: str = "photo.jpg"
    content_type: str = "image/jpeg"
    message: str | None = None  # None: accepted
    size: tuple[int, int] | None = None  # accepted: (width, height) after EXIF orientation
    # Refused only because the declared name or type disagrees with the bytes: the catalogue
    # (admin, import) refuses it; the photo searches only look at the content and accept it.
    declared_only: bool = False

    @property
    def accepted(self) -> bool:
        return self.message is None

    @property
    def accepted_by_search(self) -> bool:
        return self.message is None or self.declared_only


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


@cache
def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 1-bit PNG of ``width`` x ``height`` black pixels: ~110 KB that decodes to 900 MB."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    chunk = row * 1000
    body = b"".join(packer.compress(chunk) for _ in range(height // 1000))
    body += packer.compress(row * (height % 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` with a tiny (wrong) IDAT: the claim alone must be refused."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


def gif_bomb() -> bytes:
    """A 65535x65535 GIF (logical screen and one frame) in a few dozen bytes."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
    lzw = b"\x02" + b"\x02\x4c\x01" + b"\x00"  # min code size 2: clear, end
    return screen + frame + lzw + b"\x3b"


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    data = make_image_bytes(size=(200, 200), pattern=5)
    return data[: len(data) // 2]


def html_with_png_header() -> bytes:
    return b"\x89PNG\r\n\x1a\n<html><body><script>alert(document.cookie)</script></body></html>"


def cmyk_jpeg() -> bytes:
    return _save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95)  # red


def png16() -> bytes:
    grey = np.full((30, 40), 32896, dtype=np.uint16)  # 50 % grey in 16 bits
    return _save(Image.fromarray(grey), "PNG")


def rgba_png() -> bytes:
    image = Image.new("RGBA", (40, 30), (255, 0, 0, 0))  # fully transparent red
    return _save(image, "PNG")


def la_png() -> bytes:
    return _save(Image.new("LA", (40, 30), (0, 0)), "PNG")  # transparent black


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (40, 30), 1)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    return _save(image, "PNG", transparency=1)  # index 1 (blue) transparent


def greyscale_jpeg() -> bytes:
    return _save(Image.new("L", (40, 30), 90), "JPEG")


def exif_jpeg(*, orientation: int = 6, padding: int = 60000) -> bytes:
    """A 40x30 JPEG whose EXIF says "rotate 90°" and carries ``padding`` bytes of comment (huge EXIF)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "x" * padding  # ImageDescription
    return _save(Image.new("RGB", (40, 30), (10, 120, 10)), "JPEG", exif=exif.tobytes())


def garbage_exif_jpeg() -> bytes:
    """A JPEG with an APP1 "Exif" segment that is not TIFF data at all: it must not matter."""
    data = make_image_bytes(size=(40, 30))
    junk = b"Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08\xff\xff" + b"\xa5" * 5000
    segment = b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk
    return data[:2] + segment + data[2:]


def many_app_segments_jpeg(count: int = 200) -> bytes:
    """A JPEG preceded by ``count`` 64 KB APP segments (13 MB of metadata around 40x30 pixels)."""
    data = make_image_bytes(size=(40, 30))
    payload = b"\x00" * 65533
    segment = b"\xff\xec" + struct.pack(">H", len(payload) + 2) + payload  # APP12
    return data[:2] + segment * count + data[2:]


def progressive_jpeg(mode: str = "RGB", size: tuple[int, int] = (40, 30), **kwargs) -> bytes:
    """Pillow's (libjpeg's) progressive JPEG: 10 scans in colour, 6 in greyscale, 18 in CMYK."""
    colour = {"RGB": (128, 100, 90), "L": 90, "CMYK": (0, 255, 255, 0)}[mode]
    return _save(Image.new(mode, size, colour), "JPEG", progressive=True, quality=90, **kwargs)


def progressive_scan_bomb(size: tuple[int, int] = (2000, 2000), repeats: int = 1000) -> bytes:
    """A progressive JPEG whose last scan is repeated ``repeats`` times: 38 KB (2000x2000,
    1,010 scans) that libjpeg decodes in seconds of CPU, every scan over every block.

    The last scan runs from the last SOS marker (FF DA; never inside entropy-coded data,
    where an FF byte is followed by 00) to the EOI marker that ends the file.
    """
    data = progressive_jpeg(size=size)
    scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + scan * repeats + b"\xff\xd9"


def animated_png() -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", make_image_bytes())
    return buffer.getvalue()


def svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'


def text_chunk_bomb_png() -> bytes:
    """A valid PNG with a zTXt chunk that inflates to 64 MB (Pillow stops at 1 MB of text)."""
    good = make_image_bytes(size=(40, 30), fmt="PNG")
    bomb = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9))
    return good[:33] + bomb + good[33:]  # after the signature (8) and IHDR (25)


def webp_header_garbage() -> bytes:
    return b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40


def jpeg_with_zip_appended() -> bytes:
    """A polyglot: a valid JPEG with a ZIP after its end marker. The pixels decode; it is accepted
    (the bytes are stored as a .jpg and served as image/jpeg, never unpacked)."""
    return make_image_bytes(size=(40, 30)) + zip_file()


@cache
def corpus() -> tuple[Case, ...]:
    jpeg = make_image_bytes(size=(40, 30))
    png = make_image_bytes(size=(40, 30), fmt="PNG")
    webp = make_image_bytes(size=(40, 30), fmt="WEBP")
    return (
        # accepted, converted for the embedder
        Case("jpeg", jpeg, size=(40, 30)),
        Case("png", png, "photo.png", "image/png", size=(40, 30)),
        Case("webp", webp, "photo.webp", "image/webp", size=(40, 30)),
        Case("jpeg-no-extension", jpeg, "blob", "application/octet-stream", size=(40, 30)),
        Case("cmyk-jpeg", cmyk_jpeg(), size=(40, 30)),
        Case("greyscale-jpeg", greyscale_jpeg(), size=(40, 30)),
        Case("png-16-bit", png16(), "photo.png", "image/png", size=(40, 30)),
        Case("png-rgba", rgba_png(), "photo.png", "image/png", size=(40, 30)),
        Case("png-la", la_png(), "photo.png", "image/png", size=(40, 30)),
        Case("png-palette-transparency", palette_png_with_transparency(), "photo.png", "image/png", size=(40, 30)),
        Case("huge-exif-rotated", exif_jpeg(), size=(30, 40)),
        Case("garbage-exif", garbage_exif_jpeg(), size=(40, 30)),
        Case("many-app-segments", many_app_segments_jpeg(), size=(40, 30)),
        Case("animated-png", animated_png(), "photo.png", "image/png", size=(40, 30)),
        Case("animated-webp", animated_webp(), "photo.webp", "image/webp", size=(40, 30)),
        Case("jpeg-with-zip-appended", jpeg_with_zip_appended(), size=(40, 30)),
        Case("progressive-jpeg", progressive_jpeg(), size=(40, 30)),
        Case("progressive-cmyk-jpeg", progressive_jpeg("CMYK"), size=(40, 30)),
        Case("progressive-jpeg-restart-markers", progressive_jpeg(restart_marker_blocks=1), size=(40, 30)),
        # refused
        Case("empty", b"", message="empty"),
        Case("truncated-jpeg", truncated_jpeg(), message=NOT_READABLE),
        Case("html-with-png-header", html_with_png_header(), "photo.png", "image/png", message=NOT_READABLE),
        Case("png-bomb-30000x30000", png_bomb(), "bomb.png", "image/png", message="The image is too large (30000x30000 pixels"),
        Case("png-header-claims-8000x6000", png_header_only(8000, 6000), "big.png", "image/png", message="too large (8000x6000 pixels; at most 40 megapixels)"),
        Case("progressive-jpeg-scan-bomb", progressive_scan_bomb(), message="The JPEG has too many progressive scans (more than 100 for 2000x2000 pixels)"),
        Case("gif-bomb", gif_bomb(), "bomb.gif", "image/gif", message="Unsupported image format GIF"),
        Case("gif", make_image_bytes(fmt="GIF"), "photo.gif", "image/gif", message="Unsupported image format GIF"),
        Case("png-named-jpg", png, "photo.jpg", "image/jpeg", message="The file is named .jpg but holds a PNG image", size=(40, 30), declared_only=True),
        Case("jpeg-named-png", jpeg, "photo.png", "application/octet-stream", message="The file is named .png but holds a JPEG image", size=(40, 30), declared_only=True),
        Case("jpeg-sent-as-png", jpeg, "blob", "image/png", message="The file was sent as image/png but holds a JPEG image", size=(40, 30), declared_only=True),
        Case("jpeg-named-html", jpeg, "shell.html", "text/html", message="Files named .html are not accepted", size=(40, 30), declared_only=True),
        Case("zip", zip_file(), "photos.zip", "application/zip", message="The file is not a readable image. It is a ZIP archive; use JPEG, PNG or WebP."),
        Case("zip-named-jpg", zip_file(), message="The file is not a readable image. It is a ZIP archive; use JPEG, PNG or WebP."),
        Case("svg", svg(), "photo.svg", "image/svg+xml", message="Unsupported image format SVG"),
        Case("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n", "photo.pdf", "application/pdf", message="a PDF document"),
        Case("text", b"just some text, not a picture", "notes.txt", "text/plain", message=NOT_READABLE),
        Case("png-ztxt-bomb", text_chunk_bomb_png(), "photo.png", "image/png", message=NOT_READABLE),
        Case("webp-header-garbage", webp_header_garbage(), "photo.webp", "image/webp", message=NOT_READABLE),
    )


def case(case_id: str) -> Case:
    return next(c for c in corpus() if c.id == case_id)
