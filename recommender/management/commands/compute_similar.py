"""``manage.py compute_similar``: the precomputed similar strips of the catalogue, in bulk.

The workers keep strips fresh (after each embedding: the product's own and the strips it
enters; the periodic sweep: missing, outdated or old ones); this command fills them after a
bulk ``embed_catalog`` (``make demo`` runs it) or after a model change. Idempotent: by
default only missing, outdated or old strips.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.services import similar_strips_refresh, similar_strips_stale_product_ids
from shop.models import Product

# Products per call of the service (one upsert each), and progress shows often enough.
CHUNK = 100


class Command(BaseCommand):
    help = "Precompute the similar-items strips of products (missing or outdated ones by default)."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="recompute every active product's strip")
        parser.add_argument("--limit", type=int, help="at most this many products")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, all=False, limit=None, no_progress=False, **opts):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        if all:
            ids = list(Product.objects.filter(status=Product.Status.ACTIVE).order_by("id").values_list("id", flat=True))
            ids = ids[:limit] if limit else ids
        else:
            ids = similar_strips_stale_product_ids(limit=limit or Product.objects.count())
        if not ids:
            self.stdout.write("Every embedded product has a fresh similar strip.")
            return
        started = time.perf_counter()
        written = 0
        with tqdm(total=len(ids), unit="product", desc="similar strips", disable=no_progress or None) as bar:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                written += similar_strips_refresh(product_ids=chunk)
                bar.update(len(chunk))
        seconds = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(
            f"Computed {written} similar strips in {seconds:.1f}s ({1000 * seconds / max(written, 1):.1f} ms per product)."
        ))
