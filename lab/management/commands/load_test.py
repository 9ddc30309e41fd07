"""``manage.py load_test``: bounded mixed-traffic load test against gunicorn on loopback.

    python manage.py load_test --quick                      # smoke run, ~20 s (CI runs one through pytest)
    python manage.py load_test                              # 1, 4 and 8 clients, 30 s each
    python manage.py load_test --clients 4,8,16 --seconds 60 --workers 3

Reports: reports/load.{json,md} (load_quick.* for --quick). See lab/benchmarks/mixed_load.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.benchmarks.mixed_load import DEFAULT_MIX, LoadOptions, load_test_run, load_text
from lab.cli import command_line, positive_ints, reports_dir, search_photo_paths


def _mix(value: str) -> dict[str, float]:
    mix = {}
    for part in value.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in DEFAULT_MIX:
            raise CommandError(f"unknown kind {name!r} in --mix; choose among {', '.join(DEFAULT_MIX)}")
        try:
            mix[name.strip()] = float(weight)
        except ValueError as exc:
            raise CommandError(f"bad weight in --mix: {part!r}") from exc
    if sum(mix.values()) <= 0:
        raise CommandError("--mix needs a positive weight")
    return mix


class Command(BaseCommand):
    help = "Bounded load test (loopback gunicorn): product pages, filtered listings and photo searches, mixed."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="one level (2 clients), 3 s: a smoke run")
        parser.add_argument("--clients", help="concurrency levels, e.g. 1,4,8 (default 1,4,8; quick: 2)")
        parser.add_argument("--seconds", type=float, help="seconds per level (default 30; quick: 3)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2, one per core)")
        parser.add_argument("--mix", help="weights, e.g. product=0.5,listing=0.3,search=0.2 (the default)")
        parser.add_argument("--keep-rate-limits", action="store_true",
                            help="keep the API's per-client rate limits (by default off: all traffic comes from one address)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, help="reports folder (default reports/)")
        parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/load.json)")

    def handle(self, *args, **opts):
        if opts["seconds"] is not None and not 0 < opts["seconds"] <= 600:
            raise CommandError("--seconds must be in (0, 600]: the test is bounded")
        if opts["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        options = LoadOptions(
            quick=opts["quick"],
            clients=positive_ints(opts["clients"]) if opts["clients"] else None,
            seconds=opts["seconds"],
            workers=opts["workers"],
            mix=_mix(opts["mix"]) if opts["mix"] else dict(DEFAULT_MIX),
            seed=opts["seed"],
            rate_limits=opts["keep_rate_limits"],
            photo_paths=search_photo_paths(),
            out_dir=reports_dir(opts["out"]),
            json_path=opts["json"],
        )
        result = load_test_run(options, log=self.stdout.write, command=command_line("load_test"))
        self.stdout.write("")
        self.stdout.write(load_text(result))
        json_path = options.json_path or options.out_dir / ("load_quick.json" if options.quick else "load.json")
        self.stdout.write(f"JSON: {json_path}; Markdown: {json_path.with_suffix('.md')}")
        if result.get("levels") and any(level["errors"] for level in result["levels"]):
            raise CommandError("some requests failed; see the errors column", returncode=1)
