"""The chunked run that compute_looks and compute_similar share."""

from __future__ import annotations

import threading
import time

import pytest

from recommender.management.commands._refresh import refresh_in_chunks


def test_chunks_run_on_several_threads_and_each_product_once():
    seen: list[int] = []
    names: set[str] = set()
    lock = threading.Lock()

    def refresh(*, product_ids):
        with lock:
            seen.extend(product_ids)
            names.add(threading.current_thread().name)
        return len(product_ids) - 1  # "written" is whatever the service says

    written, _ = refresh_in_chunks(ids=list(range(23)), refresh=refresh, chunk=5, desc="complete the look",
                                   no_progress=True, threads=2)
    assert sorted(seen) == list(range(23))
    assert written == 23 - 5  # five chunks
    assert threading.current_thread().name not in names and all(n.startswith("complete-the-look") for n in names)


def test_a_failed_chunk_is_raised_and_the_chunks_not_started_are_dropped():
    started: list[list[int]] = []

    def refresh(*, product_ids):
        started.append(product_ids)
        if product_ids[0] == 0:
            raise ValueError("broken photo")
        time.sleep(0.02)
        return len(product_ids)

    with pytest.raises(ValueError, match="broken photo"):
        refresh_in_chunks(ids=list(range(100)), refresh=refresh, chunk=1, desc="x", no_progress=True, threads=2)
    assert len(started) < 10


@pytest.mark.django_db
def test_inside_a_transaction_the_chunks_run_inline():
    # Another thread's connection could not see the caller's uncommitted rows.
    names: set[str] = set()

    def refresh(*, product_ids):
        names.add(threading.current_thread().name)
        return len(product_ids)

    written, _ = refresh_in_chunks(ids=list(range(10)), refresh=refresh, chunk=3, desc="x", no_progress=True, threads=4)
    assert written == 10 and names == {threading.current_thread().name}
