"""``manage.py load_test``: bounded mixed-traffic load test with Locust against gunicorn on loopback.

    python manage.py load_test --quick                      # smoke run, one level (2 users, 3 s; CI runs one through pytest)
    python manage.py load_test                              # 1, 4, 8 and 16 users, 30 s each
    python manage.py load_test --users 4,8,16 --seconds 60 --workers 3

Reports in reports/: load.{json,md} (load_quick.* for --quick), Locust's CSV and HTML per
level (load_u<N>_stats.csv, load_u<N>.html) and the traffic plan the locustfile read
(load_plan.json). See lab/benchmarks/load.py and lab/benchmarks/locustfile.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lab.benchmarks.load import DEFAULT_MIX, KINDS, LoadOptions, load_test_run, load_text
from lab.cli import command_line, positive_ints, reports_dir, search_photo_paths

# A load test is bounded: no level runs longer than this.
MAX_SECONDS_PER_LEVEL = 600


def _mix(value: str) -> dict[str, float]:
    mix = {}
    for part in value.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in KINDS:
            raise CommandError(f"unknown kind {name!r} in --mix; choose among {', '.join(KINDS)}")
        try:
            mix[name.strip()] = float(weight)
        except ValueError as exc:
            raise CommandError(f"bad weight in --mix: {part!r}") from exc
    if sum(mix.values()) <= 0 or min(mix.values()) < 0:
        raise CommandError("--mix needs non-negative weights, one of them positive")
    return mix


class Command(BaseCommand):
    help = "Bounded load test (Locust against a loopback gunicorn): product pages, filtered listings and photo searches, mixed."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="one level (2 users), 3 s: a smoke run")
        parser.add_argument("--users", "--clients", dest="users",
                            help="concurrency levels (Locust users), e.g. 1,4,8,16 (the default; quick: 2)")
        parser.add_argument("--seconds", type=float, help="seconds per level (default 30; quick: 3)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2, one per core)")
        parser.add_argument("--mix", help="weights of product, listing, search and similar, e.g. "
                                          "product=0.5,listing=0.3,search=0.2 (the default)")
        parser.add_argument("--keep-rate-limits", action="store_true",
                            help="keep the API's per-client rate limits (by default off: all traffic comes from one address)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, help="reports folder (default reports/)")
        parser.add_argument("--json", type=Path, help="where to write the JSON (default reports/load.json)")

    def handle(self, *args, **opts):
        if opts["seconds"] is not None and not 0 < opts["seconds"] <= MAX_SECONDS_PER_LEVEL:
            raise CommandError(f"--seconds must be in (0, {MAX_SECONDS_PER_LEVEL}]: the test is bounded")
        if opts["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        options = LoadOptions(
            quick=opts["quick"],
            users=positive_ints(opts["users"]) if opts["users"] else None,
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
        json_path = options.json_path or options.out_dir / f"{options.stem()}.json"
        self.stdout.write(f"JSON: {json_path}; Markdown: {json_path.with_suffix('.md')}; Locust's CSV and HTML per level beside them")
        if result.get("levels") and any(level["errors"] for level in result["levels"]):
            raise CommandError("some requests failed; see the errors column", returncode=1)
