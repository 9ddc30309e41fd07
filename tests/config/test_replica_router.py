"""The replica router's rules that need no replica (tests/config/test_replicas.py has a real one)."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, router

from config import replicas
from shop.models import Product
from tests.factories import CategoryFactory, ProductFactory, ProductImageFactory, make_image_bytes
from visualsearch.models import ImageEmbedding


def test_lsn_round_trip():
    assert replicas.lsn_parse("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert replicas.lsn_format(replicas.lsn_parse("16/B374D848")) == "16/B374D848"
    assert replicas.lsn_parse("0/0") == 0
    for garbage in ("", None, "nonsense", "G/1", "12"):
        assert replicas.lsn_parse(garbage) is None


def test_without_replicas_everything_stays_on_the_primary(db, client):
    category = CategoryFactory()
    product = ProductFactory(category=category)
    ProductImageFactory(product=product, data=make_image_bytes())
    with replicas.replica_reads():
        assert router.db_for_read(Product) == DEFAULT_DB_ALIAS
        assert router.db_for_read(ImageEmbedding) == DEFAULT_DB_ALIAS
    response = client.get(f"/products/{product.slug}/")
    assert response.status_code == 200 and "vitrine_wlsn" not in response.cookies
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "shop")


def test_replicas_never_migrate(settings):
    settings.DATABASE_REPLICAS = ["replica1"]
    assert replicas.ReplicaRouter().allow_migrate("replica1", "shop") is False
    assert replicas.ReplicaRouter().allow_migrate(DEFAULT_DB_ALIAS, "shop") is None
