"""What ``compute_looks`` and ``compute_similar`` share: the options, which products to
refresh (the stale ones, or every active product with ``--all``), and the chunked run with
its progress bar. Not a command (Django skips modules whose name starts with ``_``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.core.management.base import CommandError
from django.db import connection, connections
from tqdm import tqdm

from shop.models import Product

# Chunks refreshed at once, each on its own thread and database connection (at most one per
# core; garments._Models lends as many mediapipe graphs). --all over the 3,000 demo products,
# one thread against two (2 cores, 2026-12-06): compute_looks 140.3 -> 95.4 s (locating the
# garments, most of a product's 47 ms, releases the GIL), compute_similar 20.2 / 21.6 ->
# 11.1 / 12.6 s (a strip is an index search and an upsert: a thread waits on PostgreSQL half
# the time).
REFRESH_THREADS = min(4, os.cpu_count() or 1)


def add_refresh_arguments(parser, *, what: str) -> None:
    parser.add_argument("--all", action="store_true", help=f"recompute every active product's {what}")
    parser.add_argument("--limit", type=int, help="at most this many products")
    parser.add_argument("--no-progress", action="store_true")


def products_to_refresh(*, every: bool, limit: int | None, stale: Callable[..., list[int]]) -> list[int]:
    """Every active product (``every``), else the ones ``stale(limit=...)`` names; at most ``limit``."""
    if limit is not None and limit < 1:
        raise CommandError("--limit must be at least 1.")
    if every:
        ids = list(Product.objects.filter(status=Product.Status.ACTIVE).order_by("id").values_list("id", flat=True))
        return ids[:limit] if limit else ids
    return stale(limit=limit or Product.objects.count())


def refresh_in_chunks(
    *, ids: Sequence[int], refresh: Callable[..., int], chunk: int, desc: str, no_progress: bool,
    threads: int = REFRESH_THREADS,
) -> tuple[int, float]:
    """``refresh(product_ids=...)`` over ``ids`` ``chunk`` at a time, ``threads`` chunks at
    once: (rows written, seconds). Each thread works on its own database connection, closed
    after each chunk; inline when the caller holds a transaction open (another connection
    could not see its rows)."""
    started = time.perf_counter()
    parts = [list(ids[start : start + chunk]) for start in range(0, len(ids), chunk)]
    written = 0
    with tqdm(total=len(ids), unit="product", desc=desc, disable=no_progress or None) as bar:
        if threads <= 1 or len(parts) < 2 or connection.in_atomic_block:
            for part in parts:
                written += refresh(product_ids=part)
                bar.update(len(part))
            return written, time.perf_counter() - started

        def run(part: list[int]) -> int:
            try:
                return refresh(product_ids=part)
            finally:
                connections.close_all()  # this thread's own

        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=desc.replace(" ", "-"))
        try:
            futures = {pool.submit(run, part): len(part) for part in parts}
            for future in as_completed(futures):
                written += future.result()
                bar.update(futures[future])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a failed chunk stops the ones not started
    return written, time.perf_counter() - started
