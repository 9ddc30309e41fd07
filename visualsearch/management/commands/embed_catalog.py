from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from visualsearch.embedding import EmbedderConfigError, available_models
from visualsearch.pipeline import catalog_embed, images_to_embed
from visualsearch.selectors import active_model_name


class Command(BaseCommand):
    help = "Embed product images in batches and store the vectors in pgvector (resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--model", choices=available_models(), help="default: the active model from settings")
        parser.add_argument("--batch-size", type=int, help="images per forward pass (default: the model's)")
        parser.add_argument("--only-missing", action="store_true", help="skip images already embedded by this model")
        parser.add_argument("--limit", type=int, help="embed at most this many images")
        parser.add_argument(
            "--no-duplicates",
            action="store_true",
            help="skip per-batch duplicate detection; run scan_duplicates afterwards (faster for a first import)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(
        self, *args, model=None, batch_size=None, only_missing=False, limit=None, no_duplicates=False, no_progress=False, **opts
    ):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        model_name = model or active_model_name()
        rows = images_to_embed(model_name=model_name, only_missing=only_missing, limit=limit)
        if not rows:
            self.stdout.write(f"Nothing to embed for {model_name}: every image already has a vector.")
            return
        with tqdm(total=len(rows), unit="img", desc=f"embedding ({model_name})", disable=no_progress or None) as bar:
            try:
                report = catalog_embed(
                    model_name=model_name,
                    batch_size=batch_size,
                    rows=rows,
                    on_progress=bar.update,
                    detect_duplicates=not no_duplicates,
                )
            except EmbedderConfigError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Embedded {report.embedded} images with {report.model_name} on {report.device} "
                f"(batch {report.batch_size}) in {report.seconds:.1f}s: {report.images_per_second:.1f} images/s "
                f"(forward pass alone {report.forward_images_per_second:.1f} images/s; "
                f"waiting for decode {report.wait_seconds:.1f}s, DB writes {report.store_seconds:.1f}s)."
            )
        )
        if report.failed:
            self.stdout.write(self.style.WARNING(f"{len(report.failed)} images could not be read:"))
            for image_id, reason in report.failed[:10]:
                self.stdout.write(f"  image {image_id}: {reason}")
