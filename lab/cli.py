"""Option handling shared by the lab's management commands: where reports and caches go,
integer lists, the sample of consumer photos the HTTP benchmarks upload, and the command
line recorded in each report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from lab.datasets import CONSUMER_DIR, consumer_read

# Every 250th consumer photo (16 of 3,863): real photos of every label for photo searches.
PHOTO_SEARCH_STRIDE = 250


def reports_dir(path: Path | None = None) -> Path:
    """``--out`` when given, else ``reports/`` in the repository."""
    return Path(path) if path else Path(settings.BASE_DIR) / "reports"


def cache_dir(path: Path | None, name: str) -> Path:
    """``--cache-dir`` when given, else ``var/cache/<name>`` in the repository."""
    return Path(path) if path else Path(settings.BASE_DIR) / "var" / "cache" / name


def positive_ints(value: str) -> tuple[int, ...]:
    """``"1,4,8"`` or ``"100_000,1_000_000"`` -> a tuple of positive integers, or a CommandError."""
    try:
        out = tuple(int(v.replace("_", "")) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise CommandError(f"expected comma-separated integers, got {value!r}") from exc
    if not out or min(out) < 1:
        raise CommandError(f"expected positive integers, got {value!r}")
    return out


def search_photo_paths() -> list[str]:
    """A fixed sample of the shared consumer photos for photo searches; [] without the data."""
    if not (CONSUMER_DIR / "labels.csv").exists():
        return []
    return [str(photo.path) for photo in consumer_read(CONSUMER_DIR)][::PHOTO_SEARCH_STRIDE]


def command_line(name: str) -> str:
    """How this run was started, for the report ("called in-process" from tests and call_command)."""
    argv = sys.argv[1:] if sys.argv[1:2] == [name] else [name, "(called in-process)"]
    return "python manage.py " + " ".join(shlex.quote(arg) for arg in argv)
