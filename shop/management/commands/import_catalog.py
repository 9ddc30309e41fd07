"""``manage.py import_catalog PATH [--limit N] [--merchant NAME] [--no-progress]``; the logic is in shop.importers."""

from __future__ import annotations

import argparse
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from shop.importers import FASHION, CatalogImportError, ImportReport, import_catalog


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "Import a catalogue folder: the Fashion Product Images layout (labels.csv or styles.csv + images/<id>.jpg) "
        "or one sub-folder of images per category. Re-runs are idempotent; bad rows are reported and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The catalogue folder.")
        parser.add_argument("--limit", type=_positive_int, help="Import only the first N rows (CSV order / sorted paths).")
        parser.add_argument(
            "--merchant", help='Merchant name (default: "Myntra" for the fashion layout, else the folder\'s name).'
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")

    def handle(self, *args, path: str, limit: int | None, merchant: str | None, no_progress: bool, **options) -> None:
        stream = getattr(self.stderr, "_out", sys.stderr)  # tqdm needs the raw stream (it writes \r)
        bar: tqdm | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                # disable=None: shown only when stderr is a terminal.
                bar = tqdm(total=total, unit="row", file=stream, disable=True if no_progress else None, leave=False)
            bar.update(done - bar.n)

        if merchant is not None and not merchant.strip():
            raise CommandError("--merchant must not be blank.")
        try:
            report = import_catalog(path, merchant_name=merchant, limit=limit, progress=progress)
        except CatalogImportError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()

        self._print_summary(report, verbosity=options.get("verbosity", 1))
        if report.imported == 0:
            raise CommandError(
                f"Nothing could be imported from {report.path}: all {report.processed} row(s) were skipped."
            )

    def _print_summary(self, report: ImportReport, *, verbosity: int) -> None:
        kind = "Fashion Product Images catalogue" if report.layout == FASHION else "folder-per-category catalogue"
        out = self.stdout
        out.write(f'Imported {kind} {report.path} as merchant "{report.merchant}": {report.processed} row(s).')
        out.write(f"  created:   {report.created}")
        out.write(f"  updated:   {report.updated}")
        out.write(f"  unchanged: {report.unchanged}")
        out.write(f"  skipped:   {len(report.skipped_rows)}")
        for reason, count in sorted(report.skipped.items()):
            out.write(f"    {reason}: {count}")
        out.write(f"  images added: {report.images_added}")
        out.write(f"  elapsed: {report.elapsed:.1f} s ({report.rows_per_second:.0f} rows/s)")
        if report.skipped_rows and verbosity >= 1:
            examples = report.examples(per_reason=3 if verbosity < 2 else len(report.skipped_rows))
            out.write("  skipped rows (first few of each reason):" if verbosity < 2 else "  skipped rows:")
            for row in examples:
                out.write(f"    {row.ref}: {row.reason}: {row.detail}")
