import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from shop.models import ProductImage
from tests.factories import ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.models import ImageEmbedding

pytestmark = pytest.mark.django_db


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
