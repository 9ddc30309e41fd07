"""``manage.py compute_similar``: the precomputed similar strips of the catalogue, in bulk.

The workers keep strips fresh (after each embedding: the product's own and the strips it
enters; the periodic sweep: missing, outdated or old ones); this command fills them after a
bulk ``embed_catalog`` (``make demo`` runs it) or after a model change. Idempotent: by
default only missing, outdated or old strips.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from recommender.management.commands._refresh import add_refresh_arguments, products_to_refresh, refresh_in_chunks
from recommender.services import similar_strips_refresh, similar_strips_stale_product_ids

# Products per call of the service (one upsert each), and progress shows often enough.
CHUNK = 100


class Command(BaseCommand):
    help = "Precompute the similar-items strips of products (missing or outdated ones by default)."

    def add_arguments(self, parser):
        add_refresh_arguments(parser, what="strip")

    def handle(self, *args, all=False, limit=None, no_progress=False, **opts):
        ids = products_to_refresh(every=all, limit=limit, stale=similar_strips_stale_product_ids)
        if not ids:
            self.stdout.write("Every embedded product has a fresh similar strip.")
            return
        written, seconds = refresh_in_chunks(
            ids=ids, refresh=similar_strips_refresh, chunk=CHUNK, desc="similar strips", no_progress=no_progress
        )
        self.stdout.write(self.style.SUCCESS(
            f"Computed {written} similar strips in {seconds:.1f}s ({1000 * seconds / max(written, 1):.1f} ms per product)."
        ))
