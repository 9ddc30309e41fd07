"""``manage.py compute_looks``: "Complete the look" for the catalogue, in bulk.

The workers keep looks fresh one product at a time (after each embedding, and the periodic
sweep); this command fills them after a bulk ``embed_catalog`` (``make demo`` runs it) or
after a model change. Idempotent: by default only missing, outdated or old looks.
"""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand

from recommender.management.commands._refresh import add_refresh_arguments, products_to_refresh, refresh_in_chunks
from recommender.models import ProductLook
from recommender.services import looks_stale_product_ids, product_looks_refresh

# Products per call of the service: its per-call reads (vectors, images, categories) are
# shared by a chunk, and progress shows often enough.
CHUNK = 25


class Command(BaseCommand):
    help = "Compute 'Complete the look' of products from their own photos (missing or outdated ones by default)."

    def add_arguments(self, parser):
        add_refresh_arguments(parser, what="look")

    def handle(self, *args, all=False, limit=None, no_progress=False, **opts):
        ids = products_to_refresh(every=all, limit=limit, stale=looks_stale_product_ids)
        if not ids:
            self.stdout.write("Every embedded product has a fresh look.")
            return
        written, seconds = refresh_in_chunks(
            ids=ids, refresh=product_looks_refresh, chunk=CHUNK, desc="complete the look", no_progress=no_progress
        )
        looks = ProductLook.objects.filter(product_id__in=ids, has_look=True)
        kinds = Counter(region["kind"] for look in looks for region in look.regions)
        with_look = looks.count()
        self.stdout.write(self.style.SUCCESS(
            f"Computed {written} looks in {seconds:.1f}s ({1000 * seconds / max(written, 1):.0f} ms per product): "
            f"{with_look} products have a look of their own ({100 * with_look / max(written, 1):.0f}%); "
            f"regions: {', '.join(f'{k} {n}' for k, n in kinds.most_common()) or 'none'}."
        ))
