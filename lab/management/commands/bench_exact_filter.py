"""``manage.py bench_exact_filter``: filtered search at scale, the HNSW walk against the exact
search of the filter's rows (lab/benchmarks/exact_filter.py; docs/benchmarks.md, "Filtered queries").

    python manage.py bench_exact_filter --rows 100000    # 25 s on the 2-core box
    python manage.py bench_exact_filter --rows 1000000   # minutes (the HNSW build alone 141 s)
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.benchmarks.exact_filter import run


class Command(BaseCommand):
    help = "Filtered search at scale: walking the HNSW graph against reading the filter's rows."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000, help="rows of the scratch table (default 100,000)")
        parser.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (default reports/)")

    def handle(self, *args, **options):
        if options["rows"] < 100:
            raise CommandError("--rows must be at least 100.")
        try:
            results = run(options["rows"], log=self.stdout.write)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        options["out"].mkdir(parents=True, exist_ok=True)
        path = options["out"] / f"exact_filter_{options['rows']}.json"
        path.write_text(json.dumps(results, indent=1))
        self.stdout.write(f"Numbers: {path}")
