from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from visualsearch.duplicates.services import duplicates_scan, duplicates_scan_image_ids
from visualsearch.embedding import available_models
from visualsearch.selectors import active_model_name


class Command(BaseCommand):
    help = (
        "Look for duplicate listings across the catalogue, in batches through the HNSW index "
        "(for catalogues embedded before duplicate detection, or after a threshold change). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", choices=available_models(), help="default: the active model")
        parser.add_argument("--batch-size", type=int, default=64, help="images per batch of neighbour queries")
        parser.add_argument(
            "--only-unchecked", action="store_true", help="only images never compared with the catalogue (fast re-runs)"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, model=None, batch_size=64, only_unchecked=False, no_progress=False, **opts):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        model_name = model or active_model_name()
        ids = duplicates_scan_image_ids(model_name=model_name, only_unchecked=only_unchecked)
        if not ids:
            self.stdout.write(f"Nothing to scan for {model_name}: every embedded image has been checked.")
            return
        with tqdm(total=len(ids), unit="img", desc="scanning for duplicates", disable=no_progress or None) as bar:
            report = duplicates_scan(image_ids=ids, model_name=model_name, batch_size=batch_size, on_progress=bar.update)
        self.stdout.write(
            self.style.SUCCESS(
                f"Scanned {report.images} images in {report.seconds:.1f}s ({report.candidates} candidate pairs checked): "
                f"{report.created['exact']} new exact-copy flags, {report.created['near']} new near-copy flags, "
                f"{report.updated} open flags with better evidence."
            )
        )
