"""``manage.py bench``: embedding throughput, nearest-neighbour speed and HTTP latency.

    python manage.py bench --quick                    # CI smoke test, under 2 minutes
    python manage.py bench                            # full: 10k, 100k and 1M vectors (long)
    python manage.py bench --only ann --sizes 100000  # one section, one size

Reports go to ``reports/`` (bench.json, bench.md, PNG plots; bench_quick.* for --quick,
so a smoke run never overwrites the full report); docs/benchmarks.md keeps
the tables of one full run. See lab/benchmarks/suite.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.benchmarks.suite import SECTIONS, BenchOptions, bench_run, bench_text
from lab.cli import command_line, positive_ints, reports_dir, search_photo_paths
from lab.datasets import CATALOG_DIR, catalog_read


class Command(BaseCommand):
    help = "Benchmark embedding throughput, nearest-neighbour queries (HNSW vs numpy vs BallTree) and the HTTP API."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="small smoke run (10k vectors, short HTTP load)")
        parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/bench.json)")
        parser.add_argument("--out", type=Path, default=None, help="reports folder (default reports/)")
        parser.add_argument("--only", help=f"comma-separated sections among {', '.join(SECTIONS)}")
        parser.add_argument("--skip-http", action="store_true", help="leave out the HTTP section")
        parser.add_argument("--sizes", help="ANN table sizes, e.g. 10000,100000,1000000")
        parser.add_argument("--batch-sizes", help="embedding batch sizes of the backends' side-by-side table, e.g. 1,8,32")
        parser.add_argument("--pipeline-batch-sizes", help="batch sizes of the embed_catalog pipeline runs (default: the default batch)")
        parser.add_argument("--throughput-images", type=int, help="images per throughput measurement")
        parser.add_argument("--backend-runs", type=int, help="alternating runs per backend and batch size (default 5)")
        parser.add_argument("--backend-images", type=int, help="images per run of the backends' table (default 64)")
        parser.add_argument("--http-seconds", type=float, help="seconds of each Locust run per endpoint (one user, then --http-clients users)")
        parser.add_argument("--http-clients", type=int, default=4, help="concurrent Locust users of the HTTP section (default 4)")
        parser.add_argument("--vectors", choices=("gaussian", "clustered"), default="gaussian",
                            help="synthetic vectors: a Gaussian shaped like the real ones (default), or clustered around them")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        sections = SECTIONS
        if opts["only"]:
            sections = tuple(s.strip() for s in opts["only"].split(",") if s.strip())
            unknown = set(sections) - set(SECTIONS)
            if unknown:
                raise CommandError(f"unknown sections {sorted(unknown)}; choose among {SECTIONS}")
        if opts["skip_http"]:
            sections = tuple(s for s in sections if s != "http")
        out_dir = reports_dir(opts["out"])
        fallback = []
        if (CATALOG_DIR / "labels.csv").exists():
            fallback = [str(item.path) for item in catalog_read(CATALOG_DIR)]
        options = BenchOptions(
            quick=opts["quick"],
            sections=sections,
            sizes=positive_ints(opts["sizes"]) if opts["sizes"] else None,
            batch_sizes=positive_ints(opts["batch_sizes"]) if opts["batch_sizes"] else None,
            pipeline_batch_sizes=positive_ints(opts["pipeline_batch_sizes"]) if opts["pipeline_batch_sizes"] else None,
            throughput_images=opts["throughput_images"],
            backend_runs=opts["backend_runs"],
            backend_images=opts["backend_images"],
            http_seconds=opts["http_seconds"],
            http_clients=opts["http_clients"],
            seed=opts["seed"],
            vectors=opts["vectors"],
            out_dir=out_dir,
            json_path=opts["json"],
            fallback_image_paths=fallback,
            photo_paths=search_photo_paths(),
        )
        log = lambda line: self.stdout.write(line)  # noqa: E731
        log(f"Reports go to {out_dir}/")
        result = bench_run(options, log=log, command=command_line("bench"))
        self.stdout.write("")
        self.stdout.write(bench_text(result))
        json_path = options.json_path or out_dir / ("bench_quick.json" if options.quick else "bench.json")
        self.stdout.write(f"JSON: {json_path}; Markdown: {json_path.with_suffix('.md')}")
