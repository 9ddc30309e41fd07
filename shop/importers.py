"""Bulk catalogue import from a folder on disk (used by ``manage.py import_catalog``).

Two layouts are understood, see :func:`detect_layout`:

``fashion``
    The Myntra "Fashion Product Images" layout: ``labels.csv`` (or Kaggle's ``styles.csv``)
    with one row per product (``id, gender, masterCategory, subCategory, articleType,
    baseColour, season, year, usage, productDisplayName`` and optionally ``image``), and the
    photos under ``images/<id>.jpg`` (or wherever the ``image`` column points).
``folder``
    One sub-folder per category, holding that category's photos:
    ``PATH/<category>/<file>.jpg|jpeg|png|webp``.

Every row becomes one product with one image. Rows are read, checked and decoded one by one,
then written ``IMPORT_BATCH`` at a time in one transaction through
:func:`shop.services.products_upsert_bulk` (what :func:`shop.services.product_upsert` and
:func:`shop.services.product_image_add` do, in a few queries per batch), so a re-run creates
nothing twice. A bad row (a missing field or image, an undecodable image, a bad value) is
recorded in the report and skipped; it never aborts the batch: when the database refuses a
batch, its rows are written again one at a time and only the one it refuses is skipped.

Re-runs are cheap: the merchant's products and image checksums are loaded once, and a row
whose fields are unchanged and whose image bytes (by SHA-256) are already attached is
counted as unchanged without touching the database or decoding the image.

Nothing here prints; the caller gets an :class:`ImportReport` and may pass ``progress``,
a callable ``progress(done, total)`` invoked after every row.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import DatabaseError, transaction

from shop.images import CheckedImage, ImageRejected, image_check, max_upload_bytes
from shop.models import ALLOWED_IMAGE_EXTENSIONS, Category, Merchant, Product, ProductImage
from shop.pricing import CURRENCY, derived_price
from shop.services import (
    ProductWrite,
    ProductWritten,
    category_get_or_create_path,
    merchant_get_or_create,
    product_image_add,
    product_upsert,
    products_upsert_bulk,
)

FASHION = "fashion"
FOLDER = "folder"

FASHION_CSV_NAMES = ("labels.csv", "styles.csv")
FASHION_REQUIRED_COLUMNS = ("id", "masterCategory", "subCategory", "articleType", "productDisplayName")
FASHION_DEFAULT_MERCHANT = "Myntra"

# Reasons a row is skipped (the keys of ImportReport.skipped).
MISSING_FIELD = "missing_field"
BAD_VALUE = "bad_value"
MISSING_IMAGE = "missing_image"
BAD_IMAGE = "bad_image"
DB_ERROR = "db_error"

GENDERS = {value: value for value in Product.Gender.values}  # "men" -> "men", ...
_GENDER_PHRASE = {"men": "for men", "women": "for women", "boys": "for boys", "girls": "for girls", "unisex": "(unisex)"}

_MAX_LENGTHS = {
    "external_id": Product._meta.get_field("external_id").max_length,
    "title": Product._meta.get_field("title").max_length,
    "colour": Product._meta.get_field("colour").max_length,
    "category": Category._meta.get_field("name").max_length,
}

Progress = Callable[[int, int], None]


class CatalogImportError(Exception):
    """The source as a whole cannot be imported (missing, unknown layout, unreadable CSV)."""


class RowSkipped(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SkippedRow:
    ref: str  # where the row is: "line 7 (id 10005)" or "Shoes/a.jpg"
    reason: str  # one of MISSING_FIELD, BAD_VALUE, MISSING_IMAGE, BAD_IMAGE, DB_ERROR
    detail: str


@dataclass
class ImportReport:
    layout: str
    path: Path
    merchant: str
    total: int = 0  # rows to import (after --limit)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    images_added: int = 0
    skipped_rows: list[SkippedRow] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.skipped_rows)

    @property
    def imported(self) -> int:
        """Rows that are now in the catalogue, whether written this time or already there."""
        return self.created + self.updated + self.unchanged

    @property
    def skipped(self) -> Counter[str]:
        return Counter(row.reason for row in self.skipped_rows)

    @property
    def rows_per_second(self) -> float:
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0

    def examples(self, per_reason: int = 3) -> list[SkippedRow]:
        """The first few skipped rows of each reason, in source order."""
        seen: Counter[str] = Counter()
        picked = []
        for row in self.skipped_rows:
            if seen[row.reason] < per_reason:
                seen[row.reason] += 1
                picked.append(row)
        return picked


@dataclass(frozen=True)
class ProductRow:
    """One source row, validated and mapped onto the catalogue's fields."""

    ref: str
    external_id: str
    title: str
    description: str
    price: Decimal
    gender: str
    colour: str
    category_path: tuple[str, ...]
    attributes: dict[str, Any]
    image_path: Path
    image_label: str  # the image's path as the source names it, for messages


# --------------------------------------------------------------------------- layouts


def _fashion_csv(root: Path) -> Path | None:
    for name in FASHION_CSV_NAMES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def _folder_images(root: Path) -> list[str]:
    """``<category>/<file>`` for every image directly inside a sub-folder of ``root``, sorted."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for item in sorted(folder.iterdir()):
            if item.name.startswith(".") or not item.is_file():
                continue
            if item.suffix.lower().lstrip(".") in ALLOWED_IMAGE_EXTENSIONS:
                found.append(f"{folder.name}/{item.name}")
    return found


def _read_csv_header(csv_path: Path) -> list[str]:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            return [name.strip() for name in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogImportError(f"Cannot read {csv_path}: {exc}") from exc


def detect_layout(path: str | Path) -> str:
    """Return FASHION or FOLDER for the catalogue at ``path``, or raise CatalogImportError."""
    root = Path(path)
    if not root.exists():
        raise CatalogImportError(f"{root} does not exist.")
    if not root.is_dir():
        raise CatalogImportError(f"{root} is not a folder.")
    csv_path = _fashion_csv(root)
    if csv_path is not None:
        missing = [c for c in FASHION_REQUIRED_COLUMNS if c not in _read_csv_header(csv_path)]
        if missing:
            raise CatalogImportError(
                f"{csv_path} is not a Fashion Product Images CSV: it lacks the column(s) {', '.join(missing)}."
            )
        return FASHION
    if _folder_images(root):
        return FOLDER
    raise CatalogImportError(
        f"{root} is neither a Fashion Product Images folder ({' or '.join(FASHION_CSV_NAMES)} with images/) "
        f"nor a folder of category sub-folders holding {'/'.join(sorted(ALLOWED_IMAGE_EXTENSIONS))} images."
    )


def import_catalog(
    path: str | Path, *, merchant_name: str | None = None, limit: int | None = None, progress: Progress | None = None
) -> ImportReport:
    """Detect the layout of ``path`` and import it."""
    layout = detect_layout(path)
    importer = import_fashion_catalog if layout == FASHION else import_folder_catalog
    return importer(path, merchant_name=merchant_name, limit=limit, progress=progress)


# --------------------------------------------------------------------------- fashion layout


def _inside(root: Path, relative: str) -> Path:
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise RowSkipped(BAD_VALUE, f"image path {relative!r} points outside the catalogue folder")
    return candidate


def _check_length(name: str, value: str, limit_key: str | None = None) -> str:
    limit = _MAX_LENGTHS[limit_key or name]
    if len(value) > limit:
        raise RowSkipped(BAD_VALUE, f"{name} is longer than {limit} characters")
    return value


def fashion_description(
    *, article_type: str, gender: str, colour: str, usage: str, season: str, year: int | None
) -> str:
    """A plain sentence from the row's own fields, e.g. 'Casual Tshirts for men in navy blue, Summer 2012 season.'"""
    words = [usage, article_type] if usage and usage.upper() != "NA" else [article_type]
    if gender:
        words.append(_GENDER_PHRASE[gender])
    if colour and colour.upper() != "NA":
        words.append(f"in {colour.lower()}")
    sentence = " ".join(words)
    when = " ".join(str(part) for part in (season if season.upper() != "NA" else "", year) if part)
    if when:
        sentence += f", {when} season"
    return sentence + "."


def _fashion_row(root: Path, line: int, raw: dict[str | None, Any], has_image_column: bool, last_column: str) -> ProductRow:
    extra = raw.pop(None, None)  # cells beyond the header
    if extra:
        # Kaggle's styles.csv has unquoted commas in the last column, productDisplayName.
        if last_column != "productDisplayName":
            raise RowSkipped(BAD_VALUE, f"{len(extra)} more cell(s) than the header has")
        raw[last_column] = ",".join([raw[last_column] or "", *extra])
    cells = {key: (value or "").strip() for key, value in raw.items() if key is not None}
    missing = [name for name in FASHION_REQUIRED_COLUMNS if not cells.get(name)]
    if missing:
        raise RowSkipped(MISSING_FIELD, f"empty {', '.join(missing)}")

    source_id = _check_length("id", cells["id"], "external_id")
    if "/" in source_id or "\\" in source_id or source_id in {".", ".."}:
        raise RowSkipped(BAD_VALUE, f"id {source_id!r} is not a plain identifier")
    title = _check_length("productDisplayName", cells["productDisplayName"], "title")
    colour = _check_length("baseColour", cells.get("baseColour", ""), "colour")
    path = tuple(
        _check_length(name, cells[name], "category") for name in ("masterCategory", "subCategory", "articleType")
    )

    raw_gender = cells.get("gender", "")
    gender = GENDERS.get(raw_gender.lower(), None) if raw_gender else ""
    if gender is None:
        raise RowSkipped(BAD_VALUE, f"unknown gender {raw_gender!r}")

    year: int | None = None
    if cells.get("year"):
        try:
            as_number = Decimal(cells["year"])
            if as_number != as_number.to_integral_value() or not 1900 <= as_number <= 2100:
                raise ValueError
            year = int(as_number)
        except (ArithmeticError, ValueError):
            raise RowSkipped(BAD_VALUE, f"year {cells['year']!r} is not a year") from None
    season, usage = cells.get("season", ""), cells.get("usage", "")
    attributes: dict[str, Any] = {"source_id": source_id}
    if season:
        attributes["season"] = season
    if year is not None:
        attributes["year"] = year
    if usage:
        attributes["usage"] = usage

    image_label = cells.get("image", "") if has_image_column else ""
    image_label = image_label or f"images/{source_id}.jpg"
    return ProductRow(
        ref=f"line {line} (id {source_id})",
        external_id=source_id,
        title=title,
        description=fashion_description(
            article_type=path[2], gender=gender, colour=colour, usage=usage, season=season, year=year
        ),
        price=derived_price(external_id=source_id, article_type=path[2], master_category=path[0]),
        gender=gender,
        colour=colour,
        category_path=path,
        attributes=attributes,
        image_path=_inside(root, image_label),
        image_label=image_label,
    )


def import_fashion_catalog(
    path: str | Path, *, merchant_name: str | None = None, limit: int | None = None, progress: Progress | None = None
) -> ImportReport:
    root = Path(path)
    if detect_layout(root) != FASHION:
        raise CatalogImportError(f"{root} has no {' or '.join(FASHION_CSV_NAMES)}.")
    csv_path = _fashion_csv(root)
    assert csv_path is not None
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows: list[tuple[int, dict]] = []
            for raw in reader:
                if limit is not None and len(rows) >= limit:
                    break
                if not any((value or "").strip() for value in raw.values() if isinstance(value, str)):
                    continue  # a blank line
                rows.append((reader.line_num, raw))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogImportError(f"Cannot read {csv_path}: {exc}") from exc
    has_image_column = "image" in header
    last_column = header[-1] if header else ""

    def parse(item: tuple[int, dict]) -> ProductRow:
        line, raw = item
        return _fashion_row(root, line, dict(raw), has_image_column, last_column)

    def ref(item: tuple[int, dict]) -> str:
        line, raw = item
        source_id = (raw.get("id") or "").strip()
        return f"line {line} (id {source_id})" if source_id else f"line {line}"

    return _run_import(
        layout=FASHION,
        root=root,
        merchant_name=merchant_name or FASHION_DEFAULT_MERCHANT,
        items=rows,
        parse=parse,
        ref=ref,
        progress=progress,
    )


# --------------------------------------------------------------------------- folder layout


def folder_short_id(relative_path: str) -> str:
    return hashlib.sha256(relative_path.encode()).hexdigest()[:8]


def _folder_row(root: Path, relative: str) -> ProductRow:
    category, _, filename = relative.partition("/")
    category_name = category.strip()
    if not category_name:
        raise RowSkipped(BAD_VALUE, "the category folder name is blank")
    _check_length("category folder name", category_name, "category")
    _check_length("relative path", relative, "external_id")
    return ProductRow(
        ref=relative,
        external_id=relative,
        title=f"{category_name} {folder_short_id(relative)}",
        description="",
        price=derived_price(external_id=relative, article_type=category_name, master_category=""),
        gender="",
        colour="",
        category_path=(category_name,),
        attributes={"source_path": relative},
        image_path=root / category / filename,
        image_label=relative,
    )


def import_folder_catalog(
    path: str | Path, *, merchant_name: str | None = None, limit: int | None = None, progress: Progress | None = None
) -> ImportReport:
    root = Path(path)
    if not root.is_dir():
        raise CatalogImportError(f"{root} is not a folder.")
    relatives = _folder_images(root)
    if not relatives:
        raise CatalogImportError(f"{root} has no category sub-folders with images.")
    if limit is not None:
        relatives = relatives[:limit]
    return _run_import(
        layout=FOLDER,
        root=root,
        merchant_name=merchant_name or root.resolve().name,
        items=relatives,
        parse=lambda relative: _folder_row(root, relative),
        ref=lambda relative: relative,
        progress=progress,
    )


# --------------------------------------------------------------------------- the shared loop


@dataclass
class _Known:
    """What the database already holds for one of the merchant's products."""

    product_id: int
    fields: dict[str, Any]
    image_sha256s: set[str]


_COMPARED_FIELDS = ("title", "description", "price", "currency", "gender", "colour", "category_id", "attributes")


def _load_known(merchant: Merchant) -> dict[str, _Known]:
    known = {
        row["external_id"]: _Known(product_id=row["id"], fields={k: row[k] for k in _COMPARED_FIELDS}, image_sha256s=set())
        for row in Product.objects.filter(merchant=merchant).values("id", "external_id", *_COMPARED_FIELDS)
    }
    by_id = {entry.product_id: entry for entry in known.values()}
    for product_id, sha256 in ProductImage.objects.filter(product__merchant=merchant).values_list("product_id", "sha256"):
        by_id[product_id].image_sha256s.add(sha256)
    return known


def _read_image(row: ProductRow) -> bytes:
    try:
        size = row.image_path.stat().st_size
        if not row.image_path.is_file():
            raise RowSkipped(MISSING_IMAGE, f"{row.image_label} is not a file")
        if size > max_upload_bytes():
            raise RowSkipped(BAD_IMAGE, f"{row.image_label}: the file is larger than {max_upload_bytes() // 2**20} MB")
        return row.image_path.read_bytes()
    except FileNotFoundError:
        raise RowSkipped(MISSING_IMAGE, f"{row.image_label} does not exist") from None
    except OSError as exc:
        raise RowSkipped(BAD_IMAGE, f"{row.image_label} cannot be read: {exc.strerror or exc}") from None


# Rows written per transaction. Row by row, a new product and its image took 11 queries and
# a commit (import_catalog over the shared catalogue: ~90-140 rows/s, three quarters of it
# waiting on the database); a batch takes a fixed handful (products_upsert_bulk). A batch holds
# its new images' bytes until it is written, so it is also written once they reach
# IMPORT_BATCH_BYTES (200 catalogue photos are ~6 MB; 200 phone photos would be ~1 GB).
IMPORT_BATCH = 200
IMPORT_BATCH_BYTES = 64 * 2**20


def _run_import(
    *,
    layout: str,
    root: Path,
    merchant_name: str,
    items: Sequence[Any],
    parse: Callable[[Any], ProductRow],
    ref: Callable[[Any], str],
    progress: Progress | None,
) -> ImportReport:
    started = time.perf_counter()
    merchant_name = merchant_name.strip()
    report = ImportReport(layout=layout, path=root, merchant=merchant_name, total=len(items))
    # The merchant is created with its first product, so a run that imports nothing leaves nothing behind.
    merchant: Merchant | None = Merchant.objects.filter(name=merchant_name).first()
    known = _load_known(merchant) if merchant is not None else {}
    categories: dict[tuple[str, ...], Category] = {}
    skipped: list[tuple[int, SkippedRow]] = []  # (row number, ...): reported in source order
    batch: list[tuple[int, str, _Pending]] = []  # (row number, ref, ...)
    batch_ids: set[str] = set()
    batch_bytes = 0

    def merchant_for() -> Merchant:
        nonlocal merchant
        if merchant is None:
            merchant = merchant_get_or_create(name=merchant_name)
        return merchant

    def category_for(path: tuple[str, ...]) -> Category:
        # Outside the row's transaction, so a row that fails later never rolls back a cached node.
        if path not in categories:
            categories[path] = category_get_or_create_path(names=path)
        return categories[path]

    def count(outcome: _Outcome) -> None:
        if outcome.created:
            report.created += 1
        elif outcome.changed or outcome.image_added:
            report.updated += 1
        else:
            report.unchanged += 1
        report.images_added += int(outcome.image_added)

    def flush() -> None:
        nonlocal batch_bytes
        for (number, where, _), result in zip(batch, _write_batch([p for *_, p in batch], merchant_for(), known), strict=True):
            if isinstance(result, RowSkipped):
                skipped.append((number, SkippedRow(ref=where, reason=result.reason, detail=result.detail)))
            else:
                count(result)
        batch.clear()
        batch_ids.clear()
        batch_bytes = 0

    if progress:
        progress(0, len(items))
    for done, item in enumerate(items, start=1):
        try:
            row = parse(item)
            prepared = _prepare_row(row, known=known, category_for=category_for)
        except RowSkipped as skip:
            skipped.append((done, SkippedRow(ref=ref(item), reason=skip.reason, detail=skip.detail)))
        else:
            if isinstance(prepared, _Outcome):
                count(prepared)
            else:
                if row.external_id in batch_ids:
                    flush()  # the same id twice in a batch: the second row updates what the first wrote
                batch.append((done, ref(item), prepared))
                batch_ids.add(row.external_id)
                batch_bytes += len(prepared.image.data) if prepared.image is not None else 0
                if len(batch) >= IMPORT_BATCH or batch_bytes >= IMPORT_BATCH_BYTES:
                    flush()
        if progress:
            progress(done, len(items))
    if batch:
        flush()
    report.skipped_rows = [row for _, row in sorted(skipped, key=lambda entry: entry[0])]
    report.elapsed = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Outcome:
    created: bool = False
    changed: bool = False
    image_added: bool = False


@dataclass(frozen=True)
class _Pending:
    """A row that must be written: its product's fields and, for bytes not stored yet, the image."""

    row: ProductRow
    category: Category
    fields: dict[str, Any]
    sha256: str
    image: CheckedImage | None


def _prepare_row(
    row: ProductRow, *, known: dict[str, _Known], category_for: Callable[[tuple[str, ...]], Category]
) -> _Outcome | _Pending:
    """What ``row`` needs: nothing (an unchanged ``_Outcome``) or a write. Raises RowSkipped."""
    data = _read_image(row)
    sha256 = hashlib.sha256(data).hexdigest()
    existing = known.get(row.external_id)
    image_known = existing is not None and sha256 in existing.image_sha256s
    checked: CheckedImage | None = None
    if not image_known:
        try:
            # The only full decode, and only for bytes we have not stored; the file's own
            # extension must agree with its content (a PNG saved as .jpg is reported).
            checked = image_check(data, name=row.image_path.name)
        except ImageRejected as exc:
            raise RowSkipped(BAD_IMAGE, f"{row.image_label}: {exc}") from None

    category = category_for(row.category_path)
    fields = {
        "title": row.title,
        "description": row.description,
        "price": row.price,
        "currency": CURRENCY,
        "gender": row.gender,
        "colour": row.colour,
        "category_id": category.pk,
        "attributes": row.attributes,
    }
    if existing is not None and image_known and existing.fields == fields:
        return _Outcome()
    return _Pending(row=row, category=category, fields=fields, sha256=sha256, image=checked)


def _write_batch(batch: Sequence[_Pending], merchant: Merchant, known: dict[str, _Known]) -> list[_Outcome | RowSkipped]:
    """Write ``batch`` (distinct external ids) in one transaction; when the database refuses
    it (a row breaks a constraint), write it again one row at a time so that only the bad
    rows are skipped."""
    try:
        written = products_upsert_bulk(
            merchant=merchant, writes=[ProductWrite(external_id=p.row.external_id, fields=p.fields, image=p.image) for p in batch]
        )
    except DatabaseError:
        return [_write_one(pending, merchant, known) for pending in batch]
    return [_remember(pending, result, known) for pending, result in zip(batch, written, strict=True)]


def _write_one(pending: _Pending, merchant: Merchant, known: dict[str, _Known]) -> _Outcome | RowSkipped:
    # product_upsert takes the category itself where the batch's fields hold its id.
    values = {name: value for name, value in pending.fields.items() if name != "category_id"}
    try:
        with transaction.atomic():
            product, created, changed = product_upsert(
                merchant=merchant, external_id=pending.row.external_id, category=pending.category, **values
            )
            image_added = False
            if pending.image is not None:
                # Bulk imports leave embedding to embed_catalog / the sweep, which batch.
                _, image_added = product_image_add(product=product, image=pending.image, announce=False)
    except DatabaseError as exc:
        first_line = next(iter(str(exc).strip().splitlines()), "")
        return RowSkipped(DB_ERROR, f"{type(exc).__name__}: {first_line}")
    return _remember(pending, ProductWritten(product=product, created=created, changed=changed, image_added=image_added), known)


def _remember(pending: _Pending, written: ProductWritten, known: dict[str, _Known]) -> _Outcome:
    entry = known.setdefault(pending.row.external_id, _Known(product_id=written.product.pk, fields={}, image_sha256s=set()))
    entry.fields = pending.fields
    entry.image_sha256s.add(pending.sha256)
    return _Outcome(created=written.created, changed=written.changed, image_added=written.image_added)
