"""Enqueue a Celery task after the current transaction commits, surviving a broker outage.

The tasks that use it are backed by a dirty flag and a periodic sweep: a message lost
because Redis did not answer is only a delay, so a broker failure must not fail the
request or the write that scheduled it.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, what: str, recovered_by: str) -> None:
    """``task.delay(*args)`` once the current transaction commits (at once outside one).
    A broker failure is logged -- ``what`` could not be enqueued, ``recovered_by`` will
    pick the work up -- and swallowed."""

    def send() -> None:
        try:
            task.delay(*args)
        except Exception:  # noqa: BLE001 - any broker failure; the sweep recovers
            logger.exception("Could not enqueue %s; %s", what, recovered_by)

    transaction.on_commit(send)
