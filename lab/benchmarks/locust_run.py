"""Run ``lab/benchmarks/locustfile.py`` headless and read its CSV statistics back.

Locust runs as a child process (``python -m locust``), never in the caller's process: it
monkey-patches the standard library for gevent on import, which Django's database
connections and the test runner must not see. Each run writes Locust's own reports,
``<prefix>_stats.csv``, ``<prefix>_failures.csv`` (and the history and exceptions CSVs) and
``<prefix>.html``; ``stats_summary`` turns the first two into the numbers the reports print.

Locust records response times in whole milliseconds, rounded to two significant digits above
100 ms (``locust.stats``), so p50/p95/p99 read from its CSV have that resolution.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import time
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
AGGREGATED = "Aggregated"


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
        "--csv", str(report_prefix), "--html", str(report_prefix.with_suffix(".html")),
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
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), check=False,
                                   timeout=seconds + STOP_TIMEOUT_S + LOCUST_OVERHEAD_S)
    wall = time.perf_counter() - started
    stats_path = Path(f"{report_prefix}_stats.csv")
    failures_path = Path(f"{report_prefix}_failures.csv")
    log_text = log_path.read_text(errors="replace")
    if completed.returncode not in LOCUST_EXIT_OK or not stats_path.exists():
        raise RuntimeError(f"locust exited with {completed.returncode}; see {log_path}:\n{log_text[-2000:]}")
    summary = stats_summary(stats_csv=stats_path.read_text(),
                            failures_csv=failures_path.read_text() if failures_path.exists() else "")
    return {
        "users": users,
        "user_class": user_class,
        "seconds": seconds,
        "wall_seconds": wall,
        **summary,
        "locust_cpu_warning": LOCUST_CPU_WARNING in log_text,
        "reports": {"stats_csv": str(stats_path), "html": str(report_prefix.with_suffix(".html")), "log": str(log_path)},
    }


def _number(value: str) -> float | None:
    """A CSV cell as a number; Locust writes "N/A" for percentiles of no requests."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def stats_row(row: dict[str, str]) -> dict:
    """One row of ``<prefix>_stats.csv``: requests, errors, req/s, p50/p95/p99 (ms), mean (ms)."""
    requests = int(_number(row["Request Count"]) or 0)
    errors = int(_number(row["Failure Count"]) or 0)
    return {
        "requests": requests,
        "errors": errors,
        "ok": requests - errors,
        "throughput_rps": _number(row["Requests/s"]) or 0.0,
        "p50": _number(row["50%"]) if requests else None,
        "p95": _number(row["95%"]) if requests else None,
        "p99": _number(row["99%"]) if requests else None,
        "mean": _number(row["Average Response Time"]) if requests else None,
    }


def stats_summary(*, stats_csv: str, failures_csv: str = "") -> dict:
    """The aggregated row of Locust's stats CSV, ``by_kind`` (one entry per request name) and
    ``failures`` (kind, method, error, occurrences) from its failures CSV."""
    rows = list(csv.DictReader(io.StringIO(stats_csv)))
    total = next((row for row in rows if row["Name"] == AGGREGATED), None)
    if total is None:
        raise ValueError("no Aggregated row in Locust's stats CSV")
    by_kind = {row["Name"]: stats_row(row) for row in sorted(rows, key=lambda r: r["Name"]) if row["Name"] != AGGREGATED}
    failures = [
        {"kind": row["Name"], "method": row["Method"], "error": row["Error"], "occurrences": int(row["Occurrences"])}
        for row in csv.DictReader(io.StringIO(failures_csv))
    ] if failures_csv.strip() else []
    return {**stats_row(total), "by_kind": by_kind, "failures": failures}
