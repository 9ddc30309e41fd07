"""Run ``lab/benchmarks/locustfile.py`` headless and read its CSV statistics back.

Locust runs as a child process (``python -m locust``), never in the caller's process: it
monkey-patches the standard library for gevent on import, which Django's database
connections and the test runner must not see. Each run writes Locust's own reports:
``<prefix>.html``, ``<prefix>.json`` (its final statistics), ``<prefix>_stats.csv``,
``<prefix>_failures.csv`` and the history and exceptions CSVs. ``stats_summary`` turns the
JSON (final, unlike the CSVs, which Locust rewrites once a second while it runs) and the
failures CSV into the numbers the reports print.

Locust records response times in whole milliseconds, rounded to two significant digits above
100 ms (``locust.stats``), so p50/p95/p99 have that resolution.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# A request still in flight when a run's time is up is finished and counted rather than cut
# off (Locust's default kills users at once); no request of the locustfile takes longer.
STOP_TIMEOUT_S = 30
# Locust's start-up (gevent, reading the plan's photos) and its report writing, on top of the
# run time and the stop timeout, before the run is taken as hung and killed.
LOCUST_OVERHEAD_S = 90
# Locust's exit codes: 0 clean, 1 some requests failed; anything else is the run itself failing.
LOCUST_EXIT_OK = (0, 1)
# Locust logs this when its own process saturates a core: the numbers then measure the load
# generator as much as the server.
LOCUST_CPU_WARNING = "CPU usage above"
REPORTED_PERCENTILES = (50, 95, 99)


def plan_write(*, path: Path, plan: dict) -> Path:
    """Write the traffic plan the locustfile reads (``--plan``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1))
    return path


def locust_command(*, host: str, user_class: str, users: int, seconds: float, plan_path: Path, report_prefix: Path) -> list[str]:
    """The ``python -m locust`` command line of one headless run."""
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), user_class,
        "--headless", "-u", str(users), "-r", str(users), "-t", f"{max(1, math.ceil(seconds))}s",
        "--stop-timeout", str(STOP_TIMEOUT_S), "--host", host, "--plan", str(plan_path),
        "--csv", str(report_prefix), "--html", str(report_prefix.with_suffix(".html")), "--json-file", str(report_prefix),
        "--only-summary", "--loglevel", "WARNING",
    ]


def locust_run(*, host: str, user_class: str, users: int, seconds: float, plan_path: Path, report_prefix: Path) -> dict:
    """One headless Locust run of ``users`` users (all started in the first second) for
    ``seconds``; its summary (``stats_summary``) with the run's facts and report paths.

    Raises RuntimeError when Locust itself fails (a bad plan, a crash): failed *requests* are
    counted in the summary instead.
    """
    report_prefix.parent.mkdir(parents=True, exist_ok=True)
    log_path = report_prefix.parent / f"{report_prefix.name}_locust.log"
    command = locust_command(host=host, user_class=user_class, users=users, seconds=seconds, plan_path=plan_path,
                             report_prefix=report_prefix)
    json_path = Path(f"{report_prefix}.json")
    failures_path = Path(f"{report_prefix}_failures.csv")
    for stale in (json_path, failures_path):  # an earlier run's, which a failed run must not pass off as its own
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: this Locust run's share is the delta
    with open(log_path, "wb") as log:
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), check=False,
                                   timeout=seconds + STOP_TIMEOUT_S + LOCUST_OVERHEAD_S)
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    log_text = log_path.read_text(errors="replace")
    if completed.returncode not in LOCUST_EXIT_OK or not json_path.exists():
        raise RuntimeError(f"locust exited with {completed.returncode}; see {log_path}:\n{log_text[-2000:]}")
    summary = stats_summary(entries=json.loads(json_path.read_text()),
                            failures_csv=failures_path.read_text() if failures_path.exists() else "")
    return {
        "users": users,
        "user_class": user_class,
        "seconds": seconds,
        "wall_seconds": wall,
        **summary,
        "locust_cpu_seconds": locust_cpu,  # the load generator's own CPU time, on the cores the server uses
        "locust_cpu_warning": LOCUST_CPU_WARNING in log_text,
        "reports": {"stats_csv": f"{report_prefix}_stats.csv", "html": str(report_prefix.with_suffix(".html")),
                    "json": str(json_path), "log": str(log_path)},
    }


def histogram_percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The response time (ms) within which ``fraction`` of the requests finished, by Locust's
    own rule (``locust.stats.calculate_response_time_percentile``: the sample of rank
    ``int(n * fraction)`` counted from 0), so the reports agree with Locust's HTML; None
    without samples."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = int(total * fraction), 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen > rank:
            return float(ms)
    return float(max(histogram))


def entries_span(entries: Sequence[dict]) -> float:
    """Seconds from the first entry's start to the last request of any (0 without requests)."""
    stamps = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    return max(stamps) - min(e["start_time"] for e in entries) if stamps else 0.0


def entry_summary(entries: Sequence[dict], *, span: float | None = None) -> dict:
    """Requests, errors, req/s, p50/p95/p99 and mean (ms) of Locust stats entries taken
    together (``--json-file``: one entry per request name, with its response-time histogram).
    ``span``: the seconds that req/s divides by (default: the entries' own span)."""
    requests = sum(e["num_requests"] for e in entries)
    errors = sum(e["num_failures"] for e in entries)
    histogram: dict[int, int] = {}
    for entry in entries:
        for ms, count in entry["response_times"].items():
            histogram[int(ms)] = histogram.get(int(ms), 0) + count
    span = entries_span(entries) if span is None else span
    timed = [e for e in entries if e["num_requests"] > e.get("num_none_requests", 0)]
    mean = (sum(e["total_response_time"] for e in timed) / sum(e["num_requests"] - e.get("num_none_requests", 0) for e in timed)
            if timed else None)
    return {
        "requests": requests,
        "errors": errors,
        "ok": requests - errors,
        "throughput_rps": requests / span if span > 0 else 0.0,
        **{f"p{p}": histogram_percentile(histogram, p / 100) for p in REPORTED_PERCENTILES},
        "mean": mean,
    }


def stats_summary(*, entries: Sequence[dict], failures_csv: str = "") -> dict:
    """All requests together, ``by_kind`` (one entry per request name: the locustfile names
    requests by kind) and ``failures`` (kind, method, error, occurrences) from Locust's
    failures CSV. ``entries``: Locust's ``--json-file``, written when it stops (its CSVs are
    snapshots taken every second, so they can miss the last second of a run)."""
    by_name: dict[str, list[dict]] = {}
    for entry in entries:
        by_name.setdefault(entry["name"], []).append(entry)
    failures = [
        {"kind": row["Name"], "method": row["Method"], "error": row["Error"], "occurrences": int(row["Occurrences"])}
        for row in csv.DictReader(io.StringIO(failures_csv))
    ] if failures_csv.strip() else []
    # Every kind's req/s over the whole run: a kind's own entry starts at its first request,
    # which in a short run would overstate its rate.
    span = entries_span(entries)
    return {
        **entry_summary(entries, span=span),
        "by_kind": {name: entry_summary(group, span=span) for name, group in sorted(by_name.items())},
        "failures": failures,
    }
