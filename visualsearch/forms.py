"""Input for "Shop the look": the uploaded photo, the optional box and the filters.

The storefront form (``ShopTheLookForm``) and the API serializer
(``visualsearch.serializers.ImageSearchSerializer``) parse the same things; the pieces
they share live here (reading the photo from memory, the all-or-none box) and in
``shop.filters`` (the filters).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.core.validators import MaxValueValidator
from django.http import HttpRequest
from PIL import Image

from shop import images as shop_images
from shop.forms import ProductFilterFields
from shop.images import ImageRejected, image_decode_rgb
from visualsearch.photos import Box

BOX_FIELDS = ("x", "y", "w", "h")
HALF_A_BOX = "Give all four of x, y, w and h for the box, or none of them."


# Uploads ------------------------------------------------------------------------------


class PhotoUploadHandler(FileUploadHandler):
    """Keeps the shopper's photo in memory, never in a temporary file.

    Django's default handlers spill uploads over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB:
    most phone photos) to a temporary file; shoppers' photos must not touch the disk.
    Memory stays bounded: only the expected file fields are kept, each cut at one byte
    over ``settings.SHOP_MAX_UPLOAD_BYTES`` (enough for ``image_check`` to report "too
    large"); the rest of the stream is read and dropped. (The views refuse a body much
    larger than that with 413 before anything parses it: ``request_too_large``.)
    """

    def __init__(self, request: HttpRequest | None = None, *, fields: frozenset[str]) -> None:
        super().__init__(request)
        self.fields = fields
        self.seen: set[str] = set()
        self.buffer = io.BytesIO()

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        if field_name not in self.fields or field_name in self.seen:
            raise SkipFile()
        super().new_file(field_name, *args, **kwargs)
        self.seen.add(field_name)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        room = shop_images.max_upload_bytes() + 1 - self.buffer.tell()
        if room > 0:
            self.buffer.write(raw_data[:room])
        return None  # consumed: no other handler stores it

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        size = self.buffer.tell()
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


def photo_upload_handlers(request: HttpRequest, *, fields: frozenset[str]) -> list[FileUploadHandler]:
    """Handlers to install on ``request.upload_handlers`` before anything reads the body."""
    return [PhotoUploadHandler(request, fields=fields)]


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # Django reads nothing from a body whose length it cannot parse


def request_too_large(request: HttpRequest) -> bool:
    """Whether the declared body is more than a photo upload can need (answer 413 unparsed)."""
    return _declared_length(request) > shop_images.upload_request_max_bytes()


# A refused upload (413, 429) is not parsed, but its bytes are read and dropped before the
# answer, up to twice the largest request an upload may be (42 MB by default). A server
# that closes a connection with unread bytes in its receive buffer makes the kernel send
# a TCP reset, and the client then sees "connection reset" or "broken pipe", never the
# refusal: with gunicorn (sync workers, which already send "Connection: close") and
# http.client on loopback, a 12 MB body over a 2 MB limit was reset every time before
# this (tests/visualsearch/test_refusals_over_http.py). Bodies larger than the bound are
# still cut off; a front proxy's own limit (nginx client_max_body_size) answers those.
DISCARD_CHUNK_BYTES = 256 * 1024


def refused_body_read_max_bytes() -> int:
    return 2 * shop_images.upload_request_max_bytes()


def discard_body(request: HttpRequest) -> int:
    """Read and drop the body of a request being refused (bounded); how many bytes were read."""
    if getattr(request, "_read_started", False):
        return 0
    left = min(_declared_length(request), refused_body_read_max_bytes())
    read = 0
    try:
        while left > 0:
            chunk = request.read(min(DISCARD_CHUNK_BYTES, left))
            if not chunk:
                break
            read += len(chunk)
            left -= len(chunk)
    except OSError:  # the client went away (UnreadablePostError): nobody to answer
        pass
    return read


# Photo searches decode JPEGs at a reduced scale (draft mode) no smaller than this: more
# than the kept photo (PhotoSearch.STORED_SIDE) and the CNN (224 px) need.
SEARCH_DECODE_SIDE = 2048


@dataclass(frozen=True)
class UploadedPhoto:
    image: Image.Image  # upright 8-bit RGB, perhaps decoded at a reduced scale
    original_size: tuple[int, int]  # the upright photo's size as uploaded (what a box was drawn on)

    def scale_box(self, box: Box | None, to_width: int) -> Box | None:
        """``box`` (pixels of the photo as uploaded) in pixels of a copy ``to_width`` wide."""
        if box is None:
            return None
        factor = to_width / self.original_size[0]
        return Box(x=round(box.x * factor), y=round(box.y * factor), w=max(1, round(box.w * factor)), h=max(1, round(box.h * factor)))


def photo_open(upload: UploadedFile) -> UploadedPhoto:
    """The uploaded photo decoded from memory, upright, as 8-bit RGB; or ImageRejected.

    ``shop.images`` decides: empty, oversized, non-image, truncated, bomb and unsupported
    files are refused before or during the one decode. Only the content counts here: the
    upload itself is never stored and its name never used, and browsers' names for photos
    dragged from other sites often lie (CDNs serve WebP under ``.jpg`` URLs); catalogue
    uploads, which are stored, must also be named for what they hold. The photo is turned
    upright (EXIF orientation) so that a box drawn over the upright preview in the browser
    lands on the same pixels.
    """
    upload.seek(0)
    checked, image = image_decode_rgb(upload.read(), max_side=SEARCH_DECODE_SIDE)
    width, height = checked.width, checked.height
    if (image.width > image.height) != (width > height) and width != height:
        width, height = height, width  # EXIF turned it a quarter
    return UploadedPhoto(image=image, original_size=(width, height))


def box_from(values: Mapping[str, int | None]) -> Box | None:
    """A Box from x, y, w, h (all four, or None when all are missing); ValueError for some."""
    given = [values.get(name) for name in BOX_FIELDS]
    if all(value is None for value in given):
        return None
    if any(value is None for value in given):
        raise ValueError(HALF_A_BOX)
    x, y, w, h = given
    return Box(x=x, y=y, w=w, h=h)


# The storefront form --------------------------------------------------------------------


class ShopTheLookForm(ProductFilterFields):
    """POSTed by the storefront page: one photo (picked, dropped or taken), box, filters.

    Two file inputs because phones need ``capture`` to open the camera directly, and a
    plain picker must still offer the photo library; whichever carries a file is used.
    The box fields are hidden and filled in by shop_the_look.js; without JS they stay
    empty and the whole photo is searched.
    """

    PHOTO_FIELDS = frozenset({"image", "camera"})

    image = forms.FileField(
        label="Photo",
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/*"}),
    )
    camera = forms.FileField(
        label="Take a photo",
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )
    x = forms.IntegerField(required=False, widget=forms.HiddenInput)
    y = forms.IntegerField(required=False, widget=forms.HiddenInput)
    w = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    h = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    field_order = ["image", "camera", "x", "y", "w", "h", "category", "gender", "min_price", "max_price"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # shop_the_look.js warns before uploading a file the server would refuse anyway.
        self.fields["image"].widget.attrs["data-max-bytes"] = shop_images.max_upload_bytes()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        field = "camera" if cleaned.get("camera") else "image"
        upload = cleaned.get(field)
        if upload is not None:
            try:
                cleaned["photo"] = photo_open(upload)
            except ImageRejected as exc:
                self.add_error(field, str(exc))
        elif not self.has_error("image") and not self.has_error("camera"):
            self.add_error("image", "Choose a photo to search with.")
        if not any(self.has_error(name) for name in BOX_FIELDS):
            try:
                cleaned["box"] = box_from(cleaned)
            except ValueError as exc:
                self.add_error(None, str(exc))
        else:
            self.add_error(None, "The box is not valid; draw it again.")
        return cleaned


    def filter_query(self) -> dict[str, Any]:
        """The filters chosen with the upload, as the query string of the search's page."""
        data = self.cleaned_data
        return {name: data.get(name) for name in ("category", "gender", "min_price", "max_price")}


class LookForm(ProductFilterFields):
    """The query string of a kept search's page: which garment (``item``) or which box, the
    filters, and ``auto=0`` to search every category rather than the guessed one."""

    item = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    x = forms.IntegerField(required=False, label="Left")
    y = forms.IntegerField(required=False, label="Top")
    w = forms.IntegerField(required=False, min_value=1, label="Width")
    h = forms.IntegerField(required=False, min_value=1, label="Height")
    auto = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, items: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item"].validators.append(MaxValueValidator(items - 1))
        for name in BOX_FIELDS:
            self.fields[name].widget.attrs.update({"inputmode": "numeric", "data-box-input": name})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not any(self.has_error(name) for name in BOX_FIELDS):
            try:
                cleaned["box"] = box_from(cleaned)
            except ValueError as exc:
                self.add_error(None, str(exc))
        return cleaned

    def auto_category(self) -> bool:
        """Narrow to the guessed category unless the query says ``auto=0`` (any category)."""
        return self.data.get("auto", "1") not in ("0", "false", "off")
