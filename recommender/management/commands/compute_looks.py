"""``manage.py compute_looks``: "Complete the look" for the catalogue, in bulk.

The workers keep looks fresh one product at a time (after each embedding, and the periodic
sweep); this command fills them after a bulk ``embed_catalog`` (``make demo`` runs it) or
after a model change. Idempotent: by default only missing, outdated or old looks.
"""

from __future__ import annotations

import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.models import ProductLook
from recommender.services import looks_stale_product_ids, product_looks_refresh
from shop.models import Product

# Products per call of the service: its per-call reads (vectors, images, categories) are
# shared by a chunk, and progress shows often enough.
CHUNK = 25


class Command(BaseCommand):
    help = "Compute 'Complete the look' of products from their own photos (missing or outdated ones by default)."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="recompute every active product's look")
        parser.add_argument("--limit", type=int, help="at most this many products")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, all=False, limit=None, no_progress=False, **opts):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        if all:
            ids = list(Product.objects.filter(status=Product.Status.ACTIVE).order_by("id").values_list("id", flat=True))
            ids = ids[:limit] if limit else ids
        else:
            ids = looks_stale_product_ids(limit=limit or Product.objects.count())
        if not ids:
            self.stdout.write("Every embedded product has a fresh look.")
            return
        started = time.perf_counter()
        written = 0
        with tqdm(total=len(ids), unit="product", desc="complete the look", disable=no_progress or None) as bar:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                written += product_looks_refresh(product_ids=chunk)
                bar.update(len(chunk))
        seconds = time.perf_counter() - started
        looks = ProductLook.objects.filter(product_id__in=ids, has_look=True)
        kinds = Counter(region["kind"] for look in looks for region in look.regions)
        with_look = looks.count()
        self.stdout.write(self.style.SUCCESS(
            f"Computed {written} looks in {seconds:.1f}s ({1000 * seconds / max(written, 1):.0f} ms per product): "
            f"{with_look} products have a look of their own ({100 * with_look / max(written, 1):.0f}%); "
            f"regions: {', '.join(f'{k} {n}' for k, n in kinds.most_common()) or 'none'}."
        ))
