import csv
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from shop import importers
from shop.importers import (
    BAD_IMAGE,
    BAD_VALUE,
    FASHION,
    FOLDER,
    MISSING_FIELD,
    MISSING_IMAGE,
    CatalogImportError,
    detect_layout,
    import_catalog,
)
from shop.models import Category, Merchant, Product, ProductImage
from shop.pricing import derived_price
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db

COLUMNS = [
    "id", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
    "season", "year", "usage", "productDisplayName", "image", "width", "height",
]  # fmt: skip

GOOD_ROWS = [
    ["1001", "Men", "Apparel", "Topwear", "Tshirts", "Navy Blue", "Summer", "2012", "Casual", "Roadster Men Navy Tee"],
    ["1002", "Women", "Apparel", "Topwear", "Tops", "Pink", "Fall", "2011", "Casual", "Vero Moda Women Pink Top"],
    ["1003", "Unisex", "Accessories", "Watches", "Watches", "Black", "Winter", "2016", "Casual", "Fastrack Black Watch"],
]
MISSING_IMAGE_ROW = ["1004", "Men", "Footwear", "Shoes", "Casual Shoes", "White", "Summer", "2012", "Casual", "Puma Shoes"]
CORRUPT_IMAGE_ROW = ["1005", "Girls", "Apparel", "Bottomwear", "Skirts", "Red", "Summer", "2011", "Casual", "Red Skirt"]
NO_TITLE_ROW = ["1006", "Boys", "Apparel", "Topwear", "Shirts", "Green", "Fall", "2012", "Casual", ""]


def write_fashion_catalog(root: Path, rows=None) -> Path:
    rows = rows if rows is not None else [*GOOD_ROWS, MISSING_IMAGE_ROW, CORRUPT_IMAGE_ROW, NO_TITLE_ROW]
    (root / "images").mkdir(parents=True, exist_ok=True)
    with (root / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for n, row in enumerate(rows):
            writer.writerow([*row, f"images/{row[0]}.jpg", 64, 80])
            if row[0] == MISSING_IMAGE_ROW[0]:
                continue
            data = make_image_bytes(colour=(20 * n, 100, 50), pattern=n + 1)
            if row[0] == CORRUPT_IMAGE_ROW[0]:
                data = data[:150]
            (root / "images" / f"{row[0]}.jpg").write_bytes(data)
    return root


def run(path, *args, **options) -> str:
    out = StringIO()
    call_command("import_catalog", str(path), *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def counts(output: str) -> dict[str, int]:
    return {key: int(n) for key, n in re.findall(r"^\s+(created|updated|unchanged|skipped):\s+(\d+)$", output, re.M)}


def reasons(output: str) -> dict[str, int]:
    return {key: int(n) for key, n in re.findall(r"^\s{4}([a-z_]+): (\d+)$", output, re.M)}


def test_fashion_layout_imports_good_rows_and_reports_bad_ones(tmp_path):
    root = write_fashion_catalog(tmp_path / "catalog")
    assert detect_layout(root) == FASHION

    output = run(root)

    assert counts(output) == {"created": 3, "updated": 0, "unchanged": 0, "skipped": 3}
    assert reasons(output) == {BAD_IMAGE: 1, MISSING_FIELD: 1, MISSING_IMAGE: 1}
    assert "line 5 (id 1004): missing_image: images/1004.jpg does not exist" in output
    assert "line 6 (id 1005): bad_image: images/1005.jpg: The file is not a readable image." in output
    assert "line 7 (id 1006): missing_field: empty productDisplayName" in output
    assert re.search(r"elapsed: [\d.]+ s \(\d+ rows/s\)", output)

    merchant = Merchant.objects.get()
    assert merchant.name == "Myntra"
    assert Product.objects.count() == 3 and ProductImage.objects.count() == 3
    tee = Product.objects.get(merchant=merchant, external_id="1001")
    assert tee.title == "Roadster Men Navy Tee"
    assert str(tee.category) == "Apparel > Topwear > Tshirts"
    assert tee.gender == Product.Gender.MEN
    assert tee.colour == "Navy Blue"
    assert tee.currency == "INR"
    assert tee.attributes == {"source_id": "1001", "season": "Summer", "year": 2012, "usage": "Casual"}
    assert tee.description == "Casual Tshirts for men in navy blue, Summer 2012 season."
    assert tee.price == derived_price(external_id="1001", article_type="Tshirts", master_category="Apparel")
    assert tee.primary_image.width == 64 and tee.primary_image.height == 80
    watch = Product.objects.get(external_id="1003")
    assert watch.gender == Product.Gender.UNISEX
    assert watch.description == "Casual Watches (unisex) in black, Winter 2016 season."
    # Rows that were skipped leave no product and no category behind.
    assert set(Category.objects.filter(parent=None).values_list("name", flat=True)) == {"Apparel", "Accessories"}
    assert Category.objects.get(name="Tops").parent.name == "Topwear"


def test_rerun_creates_nothing_and_reports_everything_unchanged(tmp_path):
    root = write_fashion_catalog(tmp_path / "catalog")
    run(root)
    prices = dict(Product.objects.values_list("external_id", "price"))
    categories = Category.objects.count()

    output = run(root)

    assert counts(output) == {"created": 0, "updated": 0, "unchanged": 3, "skipped": 3}
    assert "images added: 0" in output
    assert Product.objects.count() == 3 and ProductImage.objects.count() == 3
    assert Category.objects.count() == categories
    assert dict(Product.objects.values_list("external_id", "price")) == prices


def test_changed_title_and_new_image_bytes_are_reported_as_updated(tmp_path):
    root = write_fashion_catalog(tmp_path / "catalog")
    run(root)
    rows = [list(row) for row in GOOD_ROWS]
    rows[0][-1] = "Roadster Men Navy Blue Tee"
    write_fashion_catalog(root, rows)  # rewrites the CSV and the images (same bytes)
    (root / "images" / "1002.jpg").write_bytes(make_image_bytes(colour=(1, 2, 3), pattern=7))

    output = run(root)

    assert counts(output) == {"created": 0, "updated": 2, "unchanged": 1, "skipped": 0}
    assert Product.objects.get(external_id="1001").title == "Roadster Men Navy Blue Tee"
    assert Product.objects.get(external_id="1002").images.count() == 2
    assert Product.objects.count() == 3


def test_bad_values_are_skipped_and_the_batch_goes_on(tmp_path):
    rows = [
        GOOD_ROWS[0],
        ["2001", "Aliens", "Apparel", "Topwear", "Tshirts", "Red", "Summer", "2012", "Casual", "Odd gender"],
        ["2002", "Men", "Apparel", "Topwear", "Tshirts", "Red", "Summer", "20x2", "Casual", "Odd year"],
        ["2003", "Men", "Apparel", "Topwear", "Tshirts", "Red", "Summer", "2012", "Casual", "T" * 300],
        ["2004", "Men", "", "Topwear", "Tshirts", "Red", "Summer", "2012", "Casual", "No master category"],
    ]
    root = write_fashion_catalog(tmp_path / "catalog", rows)

    output = run(root)

    assert counts(output) == {"created": 1, "updated": 0, "unchanged": 0, "skipped": 4}
    assert reasons(output) == {BAD_VALUE: 3, MISSING_FIELD: 1}
    assert "unknown gender 'Aliens'" in output
    assert "year '20x2' is not a year" in output
    assert "empty masterCategory" in output


def test_limit_takes_the_first_rows_in_csv_order(tmp_path):
    root = write_fashion_catalog(tmp_path / "catalog")
    output = run(root, "--limit", "2", "--merchant", "Test Shop")
    assert counts(output)["created"] == 2
    assert sorted(Product.objects.values_list("external_id", flat=True)) == ["1001", "1002"]
    assert Merchant.objects.get().name == "Test Shop"


def test_styles_csv_without_image_column_uses_images_id_jpg(tmp_path):
    root = tmp_path / "kaggle"
    (root / "images").mkdir(parents=True)
    header = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "year", "usage",
              "productDisplayName"]  # fmt: skip
    lines = [",".join(header)]
    # Kaggle's styles.csv has unquoted commas in productDisplayName, its last column.
    lines.append("3001,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Formal,Peter England Men, Blue Shirt")
    (root / "styles.csv").write_text("\n".join(lines) + "\n")
    (root / "images" / "3001.jpg").write_bytes(make_image_bytes())

    output = run(root)

    assert counts(output)["created"] == 1
    shirt = Product.objects.get()
    assert shirt.title == "Peter England Men, Blue Shirt"
    assert shirt.description == "Formal Shirts for men in blue, Fall 2011 season."


def test_folder_layout(tmp_path):
    root = tmp_path / "street_photos"
    for category, n in [("Shoes", 2), ("Dress", 1)]:
        (root / category).mkdir(parents=True)
        for i in range(n):
            (root / category / f"img{i}.jpg").write_bytes(make_image_bytes(pattern=i + len(category)))
    (root / "Dress" / "notes.txt").write_text("not an image")
    (root / "Dress" / "broken.png").write_bytes(b"\x89PNG not really")
    assert detect_layout(root) == FOLDER

    output = run(root)

    assert counts(output) == {"created": 3, "updated": 0, "unchanged": 0, "skipped": 1}
    assert "Dress/broken.png: bad_image" in output
    assert Merchant.objects.get().name == "street_photos"
    shoe = Product.objects.get(external_id="Shoes/img0.jpg")
    assert re.fullmatch(r"Shoes [0-9a-f]{8}", shoe.title)
    assert shoe.category.name == "Shoes" and shoe.category.parent is None
    assert shoe.gender == "" and shoe.currency == "INR"
    assert shoe.price == derived_price(external_id="Shoes/img0.jpg", article_type="Shoes", master_category="")
    assert shoe.images.count() == 1

    again = run(root)
    assert counts(again) == {"created": 0, "updated": 0, "unchanged": 3, "skipped": 1}
    assert Product.objects.get(external_id="Shoes/img0.jpg").title == shoe.title

    # Sorted paths: Dress/broken.png comes first, and it is bad, so nothing can be imported.
    with pytest.raises(CommandError, match="Nothing could be imported"):
        run(root, "--limit", "1", "--merchant", "Other")
    assert not Merchant.objects.filter(name="Other").exists()


def test_folder_limit_follows_sorted_paths(tmp_path):
    root = tmp_path / "photos"
    for category in ["b_tops", "a_hats"]:
        (root / category).mkdir(parents=True)
        for name in ["z.jpg", "a.jpg"]:
            (root / category / name).write_bytes(make_image_bytes(pattern=len(category + name)))
    run(root, "--limit", "3")
    assert sorted(Product.objects.values_list("external_id", flat=True)) == ["a_hats/a.jpg", "a_hats/z.jpg", "b_tops/a.jpg"]


@pytest.mark.parametrize("make", ["missing", "file", "empty_dir", "wrong_csv"])
def test_a_path_that_is_no_catalogue_is_a_command_error(tmp_path, make):
    path = tmp_path / "x"
    if make == "file":
        path.write_text("hello")
    elif make == "empty_dir":
        (path / "sub").mkdir(parents=True)
        (path / "sub" / "readme.txt").write_text("no images")
    elif make == "wrong_csv":
        path.mkdir()
        (path / "labels.csv").write_text("image,label\nabc,Shirt\n")
    with pytest.raises(CommandError):
        run(path)
    with pytest.raises(CatalogImportError):
        detect_layout(path)
    assert not Product.objects.exists()


def test_nothing_readable_is_a_command_error_after_the_summary(tmp_path):
    root = write_fashion_catalog(tmp_path / "catalog", [MISSING_IMAGE_ROW, NO_TITLE_ROW])
    out = StringIO()
    with pytest.raises(CommandError, match="Nothing could be imported"):
        call_command("import_catalog", str(root), stdout=out, stderr=StringIO())
    assert "missing_image: 1" in out.getvalue()


def test_importer_api_returns_a_report(tmp_path):
    root = write_fashion_catalog(tmp_path / "catalog")
    seen = []
    report = import_catalog(root, merchant_name="API", progress=lambda done, total: seen.append((done, total)))
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert report.skipped == {MISSING_IMAGE: 1, BAD_IMAGE: 1, MISSING_FIELD: 1}
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert [row.ref for row in report.examples()] == ["line 5 (id 1004)", "line 6 (id 1005)", "line 7 (id 1006)"]


@pytest.mark.integration
def test_imports_a_slice_of_the_shared_catalogue(shared_catalog):
    output = run(shared_catalog, "--limit", "20")
    assert counts(output) == {"created": 20, "updated": 0, "unchanged": 0, "skipped": 0}
    products = Product.objects.filter(merchant__name="Myntra")
    assert products.count() == 20
    assert ProductImage.objects.filter(product__in=products).count() == 20
    assert all(p.primary_image.width == 224 for p in products)
    assert counts(run(shared_catalog, "--limit", "20"))["unchanged"] == 20


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_the_upload_corpus_is_reported_and_skipped_never_crashes(tmp_path):
    """Issue 7's corpus as a folder catalogue: good files imported (stored under names from
    their content), every bad one skipped with the reason from shop.images, the batch goes on."""
    from tests.upload_corpus import corpus

    root = tmp_path / "corpus"
    (root / "Mixed").mkdir(parents=True)
    expected_skips = {}
    imported = set()
    for case in corpus():
        ext = case.name.rsplit(".", 1)[-1].lower() if "." in case.name else ""
        name = f"{case.id}.{ext if ext in {'jpg', 'png', 'webp'} else 'jpg'}"  # the folder layout reads only those
        (root / "Mixed" / name).write_bytes(case.data)
        if case.accepted or (case.declared_only and not name.endswith(case.name.rsplit(".", 1)[-1])):
            imported.add(f"Mixed/{name}")
        else:
            expected_skips[f"Mixed/{name}"] = case.message

    report = import_catalog(root)

    assert {row.ref for row in report.skipped_rows} == set(expected_skips)
    for row in report.skipped_rows:
        assert row.reason == BAD_IMAGE
        assert expected_skips[row.ref] in row.detail, (row.ref, row.detail)
    assert set(Product.objects.values_list("external_id", flat=True)) == imported
    for image in ProductImage.objects.all():
        assert image.image.name == f"products/{image.sha256[:2]}/{image.sha256}.{image.image.name.rsplit('.', 1)[-1]}"
    png = ProductImage.objects.get(product__external_id="Mixed/png-16-bit.png")
    assert png.image.name.endswith(".png") and (png.width, png.height) == (40, 30)


def test_a_row_the_database_refuses_costs_only_that_row_of_its_batch(tmp_path, monkeypatch):
    # "AB-1" and "ab-1" are two ids but one slug ("same-tee-ab-1"): the database refuses the
    # second product, so the batch holding both is written again one row at a time.
    monkeypatch.setattr("shop.importers.IMPORT_BATCH", 3)
    same = ["Men", "Apparel", "Topwear", "Tshirts", "Red", "Summer", "2012", "Casual", "Same Tee"]
    rows = [GOOD_ROWS[0], ["AB-1", *same], ["ab-1", *same], GOOD_ROWS[1], GOOD_ROWS[2]]
    root = write_fashion_catalog(tmp_path / "catalog", rows)

    output = run(root)

    assert counts(output) == {"created": 4, "updated": 0, "unchanged": 0, "skipped": 1}
    assert reasons(output) == {"db_error": 1}
    assert "line 4 (id ab-1): db_error: IntegrityError" in output
    assert sorted(Product.objects.values_list("external_id", flat=True)) == ["1001", "1002", "1003", "AB-1"]
    assert ProductImage.objects.count() == 4


def test_an_id_listed_twice_is_created_then_updated(tmp_path, monkeypatch):
    monkeypatch.setattr("shop.importers.IMPORT_BATCH", 10)
    renamed = [*GOOD_ROWS[0][:-1], "Roadster Men Navy Tee, new title"]
    root = write_fashion_catalog(tmp_path / "catalog", [GOOD_ROWS[0], GOOD_ROWS[1], renamed])

    output = run(root)

    assert counts(output) == {"created": 2, "updated": 1, "unchanged": 0, "skipped": 0}
    assert Product.objects.get(external_id="1001").title == "Roadster Men Navy Tee, new title"
    assert Product.objects.get(external_id="1001").images.count() == 1  # both rows name images/1001.jpg


@pytest.mark.parametrize("batch, batch_bytes", [(1, 2**30), (2, 2**30), (200, 2**30), (200, 1)])
def test_batches_of_any_size_import_the_same_and_report_in_source_order(tmp_path, monkeypatch, batch, batch_bytes):
    # (200, 1): every new image fills a batch by its bytes alone.
    monkeypatch.setattr("shop.importers.IMPORT_BATCH", batch)
    monkeypatch.setattr("shop.importers.IMPORT_BATCH_BYTES", batch_bytes)
    written = []
    real = importers.products_upsert_bulk
    monkeypatch.setattr("shop.importers.products_upsert_bulk", lambda **kw: written.append(len(kw["writes"])) or real(**kw))
    root = write_fashion_catalog(tmp_path / "catalog", [GOOD_ROWS[0], MISSING_IMAGE_ROW, GOOD_ROWS[1], NO_TITLE_ROW, GOOD_ROWS[2], CORRUPT_IMAGE_ROW])

    report = import_catalog(root)

    assert (report.created, report.updated, report.unchanged, report.images_added) == (3, 0, 0, 3)
    assert [row.ref for row in report.skipped_rows] == ["line 3 (id 1004)", "line 5 (id 1006)", "line 7 (id 1005)"]
    assert list(Product.objects.order_by("external_id").values_list("external_id", "title")) == [
        ("1001", "Roadster Men Navy Tee"), ("1002", "Vero Moda Women Pink Top"), ("1003", "Fastrack Black Watch"),
    ]  # fmt: skip
    assert list(ProductImage.objects.order_by("product__external_id").values_list("position", flat=True)) == [0, 0, 0]
    expected_batches = [1, 1, 1] if batch_bytes == 1 else {1: [1, 1, 1], 2: [2, 1], 200: [3]}[batch]
    assert written == expected_batches
