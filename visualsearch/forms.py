"""Input for "Shop the look": the uploaded photo, the optional box and the filters.

The storefront form (``ShopTheLookForm``) and the API serializer
(``visualsearch.serializers.ImageSearchSerializer``) parse the same things; the pieces
they share live here (reading the photo from memory, the all-or-none box) and in
``shop.filters`` (the filters).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest
from PIL import Image

from shop import images as shop_images
from shop.forms import ProductFilterFields
from shop.images import ImageRejected, image_decode_rgb
from visualsearch.photos import Box

BOX_FIELDS = ("x", "y", "w", "h")
HALF_A_BOX = "Give all four of x, y, w and h for the box, or none of them."
# The results page shows the shopper's photo back to them inline (it is never stored):
# this long side keeps the page light while staying sharp beside the results.
PREVIEW_MAX_SIDE = 720


# Uploads ------------------------------------------------------------------------------


class PhotoUploadHandler(FileUploadHandler):
    """Keeps the shopper's photo in memory, never in a temporary file.

    Django's default handlers spill uploads over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB:
    most phone photos) to a temporary file; shoppers' photos must not touch the disk.
    Memory stays bounded: only the expected file fields are kept, each cut at one byte
    over ``settings.SHOP_MAX_UPLOAD_BYTES`` (enough for ``image_check`` to report "too
    large"); the rest of the stream is read and dropped. (The views refuse a body much
    larger than that with 413 before anything reads it: ``request_too_large``.)
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


def request_too_large(request: HttpRequest) -> bool:
    """Whether the declared body is more than a photo upload can need (answer 413 unread)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads nothing from a body whose length it cannot parse
    return length > shop_images.upload_request_max_bytes()


def photo_open(upload: UploadedFile) -> Image.Image:
    """The uploaded photo decoded from memory, upright, as 8-bit RGB; or ImageRejected.

    ``shop.images`` decides: empty, oversized, non-image, truncated, bomb and unsupported
    files are refused before or during the one decode. Only the content counts here: the
    photo is never stored and its name never used, and browsers' names for photos dragged
    from other sites often lie (CDNs serve WebP under ``.jpg`` URLs); catalogue uploads, which
    are stored, must also be named for what they hold. The photo is turned upright (EXIF
    orientation) so that the box, drawn over the upright preview in the browser, lands on
    the same pixels.
    """
    upload.seek(0)
    _, image = image_decode_rgb(upload.read())
    return image


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


@dataclass(frozen=True)
class PhotoPreview:
    """The shopper's photo, shown back inline, with the box as percentages of its size."""

    data_url: str
    width: int
    height: int
    box: dict[str, float] | None  # left, top, width, height in % of the photo


def preview_data_url(image: Image.Image, *, max_side: int = PREVIEW_MAX_SIDE) -> str:
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=82, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``product_search_by_photo`` (valid forms only), less ``k``."""
        data = self.cleaned_data
        return {"image": data["photo"], "box": data.get("box"), "filters": self.filters()}

    def photo_preview(self) -> PhotoPreview | None:
        """The decoded photo and its box for the page, when the photo itself was valid."""
        photo: Image.Image | None = getattr(self, "cleaned_data", {}).get("photo")
        if photo is None:
            return None
        width, height = photo.size
        box: Box | None = self.cleaned_data.get("box")
        crop = box.clamp_to(width, height) if box else None
        box_percent = None
        if crop is not None:
            left, upper, right, lower = crop
            box_percent = {
                "left": round(100 * left / width, 3),
                "top": round(100 * upper / height, 3),
                "width": round(100 * (right - left) / width, 3),
                "height": round(100 * (lower - upper) / height, 3),
            }
        return PhotoPreview(data_url=preview_data_url(photo), width=width, height=height, box=box_percent)
