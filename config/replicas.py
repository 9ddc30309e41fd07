"""Read replicas: search and listing reads go to streaming replicas, everything else to the primary.

Configured by ``DATABASE_REPLICA_URLS`` (comma-separated; ``config.database``): each URL
becomes a database alias ``replica1``, ``replica2``, ... listed in
``settings.DATABASE_REPLICAS``. Without replicas the router answers "no opinion" and every
query goes to ``default`` exactly as before.

Who reads from a replica -- only code that asks for it:

* ``ReplicaReadsMiddleware`` lets GET/HEAD requests of the storefront and the public API
  read from replicas; staff pages (``DATABASE_REPLICA_PRIMARY_PATHS``: the admin, the
  duplicate review queue, the model pages) and every other method stay on the primary.
* ``replica_reads()`` (a context manager) or ``read_with_fallback()`` opt a block in, e.g.
  the image search API, which is a POST that only reads.

Celery workers, management commands and anything outside those stay on the primary, so
a write path never reads a stale row by accident. Inside a transaction on the primary,
after the request has written through the ORM, and for the tables of sessions, users and
permissions, reads stay on the primary too.

Read-your-writes: after a request that may have written (any method but GET/HEAD/OPTIONS,
or one that wrote through the ORM) the middleware stores the primary's WAL position in a
short-lived cookie; the next requests of that browser use a replica only once the replica
has replayed past it. A shopper's POST that redirects to its results page therefore never
sees the page before its own search exists.

Health: each process checks a replica at most every ``REPLICA_CHECK_SECONDS`` (one query:
is it in recovery, streaming, how far behind) and leaves it out while it is unreachable or
more than ``DATABASE_REPLICA_MAX_LAG`` seconds behind. A replica that fails during a request
is marked down and the request is read again from the primary (safe: only reads run under
the replica policy), so a replica going away costs no error page.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

T = TypeVar("T")

# One health query per replica per process per second: 0.08 ms p50 over a local Unix
# socket (0.10 ms p95; 2,000 queries, 2026-12-01), so a web process spends ~0.01% of its
# time on it. The router itself adds 3.3 us per ORM read under the replica policy
# (0.8 us without): nothing next to a 20 ms page.
REPLICA_CHECK_SECONDS = 1.0
# A replica that refused a connection or failed a query is not tried again for this long
# (a connect timeout would otherwise be paid by a request every second).
REPLICA_RETRY_SECONDS = 5.0
# Tables a replica never serves: sessions and users are read right after they are written
# (log in, then the next page), and they are small.
PRIMARY_ONLY_APPS = frozenset({"sessions", "auth", "admin", "contenttypes"})
# The cookie that carries a browser's last write position (read-your-writes).
WRITE_LSN_COOKIE = "vitrine_wlsn"
# How long after a write the cookie matters: a replica further behind than this is
# excluded by the lag limit anyway.
WRITE_LSN_COOKIE_SECONDS = 60
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HEALTH_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
    # Seconds behind: none when everything received is replayed, else the age of the last
    # replayed transaction (an upper bound: after a quiet hour the first write looks an
    # hour late until it is replayed, a few milliseconds later).
    " CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


def lsn_parse(text: str | None) -> int | None:
    """A PostgreSQL LSN ('16/B374D848') as an integer; None for nothing or garbage."""
    if not text:
        return None
    high, sep, low = text.strip().partition("/")
    if not sep:
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def lsn_format(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def replica_aliases() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", ()))


# Health ---------------------------------------------------------------------------------


@dataclass
class ReplicaHealth:
    alias: str
    usable: bool
    checked_at: float  # time.monotonic()
    replay_lsn: int | None = None
    lag_seconds: float | None = None
    reason: str = ""  # why not usable


class ReplicaMonitor:
    """Per process: the last health check of each replica, refreshed when read after
    ``REPLICA_CHECK_SECONDS`` (``REPLICA_RETRY_SECONDS`` for one that was down)."""

    def __init__(self) -> None:
        self._health: dict[str, ReplicaHealth] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._health.clear()

    def mark_down(self, alias: str, reason: str) -> None:
        logger.warning("read replica %s left out for %.0f s: %s", alias, REPLICA_RETRY_SECONDS, reason)
        with self._lock:
            self._health[alias] = ReplicaHealth(alias, False, time.monotonic(), reason=reason)
        _close_quietly(alias)

    def health(self, alias: str, *, refresh: bool = False) -> ReplicaHealth:
        now = time.monotonic()
        with self._lock:
            known = self._health.get(alias)
        if known is not None:
            age = now - known.checked_at
            # A down replica is not re-tried early, even for a fresh position (``refresh``).
            if (not known.usable and age < REPLICA_RETRY_SECONDS) or (known.usable and not refresh and age < REPLICA_CHECK_SECONDS):
                return known
        checked = self._check(alias)
        with self._lock:
            self._health[alias] = checked
        return checked

    def _check(self, alias: str) -> ReplicaHealth:
        now = time.monotonic()
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(_HEALTH_SQL)
                in_recovery, replay, streaming, lag = cursor.fetchone()
        except DatabaseError as exc:
            _close_quietly(alias)
            logger.warning("read replica %s unreachable: %s", alias, exc)
            return ReplicaHealth(alias, False, now, reason=f"unreachable: {exc}".strip())
        lag = float(lag or 0.0)
        health = ReplicaHealth(alias, True, now, replay_lsn=lsn_parse(replay), lag_seconds=lag)
        if not in_recovery:
            health.usable, health.reason = False, "not in recovery (promoted, or not a replica)"
        elif not streaming:
            # Disconnected from the primary: its "caught up" would mean "caught up with
            # what it last received", which says nothing about what it is missing.
            health.usable, health.reason = False, "not streaming from the primary"
        elif lag > settings.DATABASE_REPLICA_MAX_LAG:
            health.usable, health.reason = False, f"{lag:.1f} s behind (limit {settings.DATABASE_REPLICA_MAX_LAG} s)"
        return health


monitor = ReplicaMonitor()


def _close_quietly(alias: str) -> None:
    try:
        connections[alias].close()
    except DatabaseError:
        pass


# The policy of the running request or block ---------------------------------------------


@dataclass
class ReadPolicy:
    min_lsn: int | None = None  # read-your-writes: the replica must have replayed this far
    used: set[str] = field(default_factory=set)  # replicas read from so far
    wrote: bool = False  # a write went through the ORM: later reads go to the primary
    chosen: str | None = None  # the replica picked for this block (one per block: consistent reads)


_policy: contextvars.ContextVar[ReadPolicy | None] = contextvars.ContextVar("replica_read_policy", default=None)
_round_robin = itertools.count()


def _pick_replica(policy: ReadPolicy) -> str | None:
    aliases = replica_aliases()
    if not aliases:
        return None
    start = next(_round_robin)
    for offset in range(len(aliases)):
        alias = aliases[(start + offset) % len(aliases)]
        health = monitor.health(alias)
        if not health.usable:
            continue
        if policy.min_lsn is not None and (health.replay_lsn or 0) < policy.min_lsn:
            # The cached position is a lower bound (it only moves forward): ask again
            # before giving up on this replica for the browser's own write.
            health = monitor.health(alias, refresh=True)
            if not health.usable or (health.replay_lsn or 0) < policy.min_lsn:
                continue
        return alias
    return None


@contextmanager
def replica_reads(*, min_lsn: int | None = None) -> Iterator[ReadPolicy]:
    """Reads in this block may go to a replica (one replica for the whole block)."""
    policy = ReadPolicy(min_lsn=min_lsn)
    token = _policy.set(policy)
    try:
        yield policy
    finally:
        _policy.reset(token)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Reads in this block go to the primary, whatever the surrounding policy."""
    token = _policy.set(None)
    try:
        yield
    finally:
        _policy.reset(token)


def primary_if_missing(read: Callable[[], T | None]) -> T | None:
    """``read()``; if it found nothing on a replica, ``read()`` again on the primary.

    For lookups by an id someone was just given (a shared search link, a new listing):
    on a lagging replica "not found" may only mean "not replayed yet".
    """
    found = read()
    policy = _policy.get()
    if found is None and policy is not None and policy.used:
        with primary_reads():
            found = read()
    return found


def _replica_failure(exc: BaseException, policy: ReadPolicy) -> bool:
    return bool(policy.used) and isinstance(exc, (OperationalError, InterfaceError))


def read_with_fallback(read: Callable[[], T], *, min_lsn: int | None = None) -> T:
    """``read()`` with replica reads allowed; if a replica fails under it, it is marked
    down and ``read()`` runs again on the primary. ``read`` must only read."""
    with replica_reads(min_lsn=min_lsn) as policy:
        try:
            return read()
        except DatabaseError as exc:
            if not _replica_failure(exc, policy):
                raise
            for alias in policy.used:
                monitor.mark_down(alias, f"failed during a read: {exc}".strip())
    with primary_reads():
        return read()


# The router -----------------------------------------------------------------------------


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        policy = _policy.get()
        if policy is None or policy.wrote:
            return None
        if model is not None and model._meta.app_label in PRIMARY_ONLY_APPS:
            return None
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return None  # a transaction on the primary reads its own state
        if policy.chosen is None:
            policy.chosen = _pick_replica(policy) or DEFAULT_DB_ALIAS
        if policy.chosen == DEFAULT_DB_ALIAS:
            return None
        policy.used.add(policy.chosen)
        return policy.chosen

    def db_for_write(self, model, **hints):
        policy = _policy.get()
        # Sessions and users are read from the primary anyway: saving the session (every
        # product page records the view in it) does not pin the browser to the primary.
        if policy is not None and (model is None or model._meta.app_label not in PRIMARY_ONLY_APPS):
            policy.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # Replicas hold the primary's rows: an object read from one may relate to any.
        names = {DEFAULT_DB_ALIAS, *replica_aliases()}
        if obj1._state.db in names and obj2._state.db in names:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db in replica_aliases():
            return False  # read-only; they replay the primary's migrations
        return None


# The middleware -------------------------------------------------------------------------


def _primary_write_lsn() -> int | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return lsn_parse(cursor.fetchone()[0])
    except DatabaseError:
        return None


class ReplicaReadsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def _replica_allowed(self, request) -> bool:
        if request.method not in SAFE_METHODS:
            return False
        return not any(request.path.startswith(prefix) for prefix in settings.DATABASE_REPLICA_PRIMARY_PATHS)

    def __call__(self, request):
        if not replica_aliases():
            return self.get_response(request)
        wrote = request.method not in SAFE_METHODS
        if self._replica_allowed(request):
            # No read_with_fallback here: Django turns a view's exception into a response
            # before it gets back to this middleware; process_exception is the fallback.
            with replica_reads(min_lsn=lsn_parse(request.COOKIES.get(WRITE_LSN_COOKIE))) as policy:
                response = self.get_response(request)
            wrote = policy.wrote
        else:
            with primary_reads():
                response = self.get_response(request)
        if wrote:
            lsn = _primary_write_lsn()
            if lsn is not None:
                response.set_cookie(
                    WRITE_LSN_COOKIE, lsn_format(lsn), max_age=WRITE_LSN_COOKIE_SECONDS, httponly=True, samesite="Lax",
                    secure=request.is_secure(),
                )
        return response

    def process_exception(self, request, exception):
        """A replica failed while the view read: mark it down and read again from the primary.

        Views turn exceptions into 500 responses before they reach ``__call__``; this hook
        sees them first. Only requests under the replica policy (safe methods) get here
        with replica reads, so running the view again is safe.
        """
        policy = _policy.get()
        if policy is None or not _replica_failure(exception, policy):
            return None
        match = getattr(request, "resolver_match", None)
        if match is None:
            return None
        for alias in policy.used:
            monitor.mark_down(alias, f"failed during {request.method} {request.path}: {exception}".strip())
        # The same policy, pinned to the primary: a write of the second run (a signed-in
        # shopper's product view) still sets the read-your-writes cookie.
        policy.chosen = DEFAULT_DB_ALIAS
        return match.func(request, *match.args, **match.kwargs)
