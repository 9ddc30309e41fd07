import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from django.urls import reverse

from shop.models import ProductImage
from tests.factories import ProductFactory, ProductImageFactory, make_image_bytes
from tests.upload_corpus import corpus
from visualsearch.models import ImageEmbedding

pytestmark = pytest.mark.django_db

CASES = corpus()


def test_admin_upload_is_checked_hashed_and_embedded(admin_client, django_capture_on_commit_callbacks):
    product = ProductFactory()
    data = make_image_bytes(pattern=7, size=(90, 120))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:shop_productimage_add"),
            {"product": product.pk, "image": SimpleUploadedFile("x.jpg", data, "image/jpeg"), "position": 0},
        )
    assert response.status_code == 302, response.content[:2000]
    row = ProductImage.objects.get(product=product)
    assert (row.width, row.height) == (90, 120) and len(row.sha256) == 64
    assert ImageEmbedding.objects.filter(image=row).exists()


def test_admin_rejects_a_file_that_is_not_an_image(admin_client):
    product = ProductFactory()
    response = admin_client.post(
        reverse("admin:shop_productimage_add"),
        {"product": product.pk, "image": SimpleUploadedFile("x.jpg", b"<html>", "image/jpeg"), "position": 0},
    )
    assert response.status_code == 200
    assert not ProductImage.objects.exists()


@pytest.mark.parametrize("name", ["shop_product", "shop_category", "shop_merchant", "shop_productimage", "visualsearch_imageembedding"])
def test_admin_changelists_render(admin_client, name):
    ProductImageFactory()
    app, model = name.split("_", 1)
    assert admin_client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 200



# Issue 7: the admin's upload goes through shop.images like every other ------------------------


def admin_upload(client, product, data: bytes, name: str = "x.jpg", content_type: str = "image/jpeg"):
    return client.post(
        reverse("admin:shop_productimage_add"),
        {"product": product.pk, "image": SimpleUploadedFile(name, data, content_type), "position": 0},
    )


def media_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def image_errors(response) -> str:
    return " ".join(response.context["adminform"].form.errors.get("image", []))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_through_the_admin(admin_client, settings, case):
    product = ProductFactory()
    response = admin_upload(admin_client, product, case.data, case.name, case.content_type)
    if case.accepted:
        assert response.status_code == 302, image_errors(response)
        row = ProductImage.objects.get(product=product)
        extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[Image.open(io.BytesIO(case.data)).format]
        assert row.image.name == f"products/{row.sha256[:2]}/{row.sha256}.{extension}"  # from the content
        assert media_files(settings) == [row.image.name]
    else:
        assert response.status_code == 200
        assert case.message in image_errors(response)
        assert not ProductImage.objects.exists()
        assert media_files(settings) == []


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.jpg", "..\\..\\windows\\win.ini.jpg", "/etc/cron.d/evil.jpg", "a\x00b.jpg", "x" * 3000 + ".jpg",
     "%2e%2e%2f%2e%2e%2fetc.jpg", "&#46;&#46;/&#46;&#46;/x.jpg", ".htaccess.jpg", "CON.jpg", "shell.php\n.jpg", "shell.php%00.jpg"],
)
def test_a_malicious_file_name_never_reaches_the_filesystem(admin_client, settings, tmp_path, name):
    product = ProductFactory()
    data = make_image_bytes(pattern=3)
    before = {p for p in tmp_path.rglob("*")}
    response = admin_upload(admin_client, product, data, name)
    assert response.status_code == 302, image_errors(response)
    row = ProductImage.objects.get(product=product)
    assert row.image.name == f"products/{row.sha256[:2]}/{row.sha256}.jpg"
    assert media_files(settings) == [row.image.name]
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(p == settings.MEDIA_ROOT or settings.MEDIA_ROOT in p.parents for p in created)


def test_a_huge_admin_upload_is_refused_before_it_is_read(admin_client, settings, monkeypatch):
    settings.SHOP_MAX_UPLOAD_BYTES = 1000
    monkeypatch.setattr("shop.admin.image_check", lambda *a, **k: pytest.fail("read and decoded"))
    response = admin_upload(admin_client, ProductFactory(), make_image_bytes(size=(300, 300), pattern=9))
    assert response.status_code == 200
    assert image_errors(response) == "The file is larger than 1000 bytes."


def test_uploaded_media_cannot_be_escaped(client, settings):
    (settings.MEDIA_ROOT / "products").mkdir(parents=True)
    (settings.MEDIA_ROOT.parent / "secret.txt").write_text("secret")
    for path in ("/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/..%2fsecret.txt", "/media//etc/passwd"):
        response = client.get(path)
        assert response.status_code in (400, 404), path  # SuspiciousFileOperation: 400
        assert b"secret" not in response.content


def test_merchandiser_pages_and_actions_are_for_staff_only(client, settings):
    from django.contrib.auth import get_user_model

    product = ProductFactory()
    shopper = get_user_model().objects.create_user("shopper", password="pw-shop-123")
    for who in (None, shopper):
        if who is not None:
            client.force_login(who)
        for url in (reverse("admin:shop_product_changelist"), reverse("admin:shop_productimage_add"),
                    reverse("admin:shop_product_change", args=[product.pk])):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
        response = client.post(reverse("admin:shop_product_changelist"), {"action": "hide", "_selected_action": [product.pk]})
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
        response = admin_upload(client, product, make_image_bytes())
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    product.refresh_from_db()
    assert product.status == "active" and not ProductImage.objects.exists() and media_files(settings) == []


def test_admin_forms_need_the_csrf_token(admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    product = ProductFactory()
    assert admin_upload(client, product, make_image_bytes()).status_code == 403
    response = client.post(reverse("admin:shop_product_changelist"), {"action": "hide", "_selected_action": [product.pk]})
    assert response.status_code == 403
    product.refresh_from_db()
    assert product.status == "active" and not ProductImage.objects.exists()
