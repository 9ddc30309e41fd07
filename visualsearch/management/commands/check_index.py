"""``manage.py check_index``: report (and with ``--fix`` repair) drift between the
catalogue and the embeddings. Exits 1 while drift remains, so it can run from cron:

    python manage.py check_index                 # report only
    python manage.py check_index --fix           # repair, embedding in this process
    python manage.py check_index --fix --enqueue # repair, sending the embedding to the workers
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from visualsearch.embedding import EmbedderConfigError, available_models
from visualsearch.health import IndexDrift, index_drift_find, index_drift_repair
from visualsearch.selectors import active_model_name

DESCRIPTIONS = {
    "missing": "images with no vector for the model that nothing will embed (for the active model: not dirty)",
    "stuck_dirty": "images dirty for longer than the grace period (is the sweep / beat running?)",
    "stale": "images whose embedding was computed from other bytes (sha256 differs)",
    "orphan_image": "embeddings whose image is gone",
    "orphan_product": "embeddings whose product is gone",
    "wrong_product": "embeddings pointing at another product than their image's",
    "dim_mismatch": "embeddings whose dimension is not their model's (or not their vector's)",
    "canonical": "exact-copy groups with no canonical (indexed) row or more than one",
    "index_missing": "the model's HNSW index is missing or invalid",
    "pending": "images dirty within the grace period (not drift: the workers will embed them)",
}
SAMPLE = 10


class Command(BaseCommand):
    help = "Report (and with --fix repair) drift between product images and their embeddings; exit 1 if drift remains."

    def add_arguments(self, parser):
        parser.add_argument("--model", choices=available_models(), help="default: the active model")
        parser.add_argument("--fix", action="store_true", help="repair what is found")
        parser.add_argument("--enqueue", action="store_true", help="with --fix: send re-embedding to the workers instead of doing it here (active model only)")
        parser.add_argument("--grace-seconds", type=int, default=600,
                            help="a dirty image younger than this is pending, not drift (default 600)")
        parser.add_argument("--batch-size", type=int, default=32, help="images per embedding call with --fix")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, model=None, fix=False, enqueue=False, grace_seconds=600, batch_size=32, as_json=False, **opts):
        if enqueue and not fix:
            raise CommandError("--enqueue only makes sense with --fix.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        model_name = model or active_model_name()
        drift = index_drift_find(model_name=model_name, grace_seconds=grace_seconds)
        out: dict = {"model": model_name, "dim": drift.dim, "before": drift.counts()}
        if not as_json:
            self._print(drift, title=f"Index check for {model_name} ({drift.dim}-d)")
        if fix and drift.total:
            try:
                report = index_drift_repair(drift=drift, enqueue=enqueue, batch_size=batch_size)
            except EmbedderConfigError as exc:  # e.g. no weights file for that model here
                raise CommandError(str(exc)) from exc
            out["fix"] = {
                "deleted_rows": report.deleted_rows, "relinked_rows": report.relinked_rows,
                "marked_dirty": report.marked_dirty, "embedded": report.embedded, "enqueued": report.enqueued,
                "unreadable_images": [image_id for image_id, _ in report.failed], "canonical_changed": report.canonical_changed,
                "index_created": report.index_created,
            }
            if not as_json:
                self.stdout.write(
                    f"Fixed: deleted {report.deleted_rows} rows, relinked {report.relinked_rows}, marked {report.marked_dirty} "
                    f"images dirty, embedded {report.embedded}, enqueued {report.enqueued}, re-elected {report.canonical_changed} "
                    f"canonical flags" + (f", built index {report.index_created}" if report.index_created else "") + "."
                )
                for image_id, error in report.failed[:SAMPLE]:
                    self.stdout.write(self.style.WARNING(f"  image {image_id} cannot be read: {error}"))
            # Enqueued images are dirty until a worker embeds them: pending, not drift.
            drift = index_drift_find(model_name=model_name, grace_seconds=grace_seconds)
            if not as_json:
                self._print(drift, title="After the fix")
        out["after" if fix else "before"] = drift.counts()
        out["drift"] = drift.total
        if as_json:
            self.stdout.write(json.dumps(out, indent=2))
        if drift.total:
            # CommandError with returncode 1: the exit status cron and CI look at.
            raise CommandError(f"{drift.total} drift item(s) remain for {model_name}.", returncode=1)
        if not as_json:
            self.stdout.write(self.style.SUCCESS("No drift."))

    def _print(self, drift: IndexDrift, *, title: str) -> None:
        self.stdout.write(title)
        for kind, count in drift.counts().items():
            value = getattr(drift, kind)
            if kind == "index_missing":
                sample = f" ({value})" if value else ""
            else:
                sample = f"  e.g. {', '.join(map(str, value[:SAMPLE]))}" if value else ""
            style = self.style.WARNING if count and kind != "pending" else (lambda s: s)
            self.stdout.write(style(f"  {kind:<15} {count:>7}  {DESCRIPTIONS[kind]}{sample}"))
