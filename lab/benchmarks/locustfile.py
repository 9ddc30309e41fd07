"""Locust traffic for vitrine: the storefront mix of ``manage.py load_test`` and the API calls
of ``manage.py bench``.

Both commands start gunicorn on loopback, write a *plan* (JSON: seed, mix, product slugs and
ids, listing query strings, photo paths; ``lab/benchmarks/load.py::traffic_targets``) and run

    python -m locust -f lab/benchmarks/locustfile.py Shopper --plan reports/load_plan.json \\
        --headless -u 4 -r 4 -t 30s --host http://127.0.0.1:PORT --csv reports/load_u4 --html reports/load_u4.html

through ``lab/benchmarks/locust_run.py``. The same command without ``--headless`` opens
Locust's web UI against any server whose catalogue the plan was written from.

Two user classes (name one on the command line, or Locust runs both):

* ``Shopper``: a visitor of the storefront, keeping its session cookie as a browser does;
  the plan's ``mix`` weighs product pages, filtered listings, photo searches and, when
  asked, similar-items API calls;
* ``ApiClient``: an app calling the API only (no cookies); the plan's ``api_mix`` weighs
  ``GET /api/products/{id}/similar`` and ``POST /api/search/image``.

Every request is named by its kind (``product``, ``listing``, ``search``, ``similar``), so
Locust's statistics are per kind. An error is any answer that is not 2xx (redirects are not
followed) or a request that failed. Each user draws its requests from its own seeded
generator (the plan's seed and the user's number), so a run sends the same sequences again.

This file runs inside Locust's process (gevent): it imports neither Django nor the project.
"""

from __future__ import annotations

import io
import itertools
import json
import random
from pathlib import Path

from locust import FastHttpUser, constant, events, task
from urllib3 import encode_multipart_formdata

KINDS = ("product", "listing", "search", "similar")
# "search": a shopper's photo search as the API does it by default (the garments found and
# each searched); "search_single": the whole photo searched once (``detect=false``).
API_KINDS = ("similar", "search", "search_single")
# The server's answers are what is measured: users send their next request at once (a closed
# loop, as many requests in flight as users), as the hand-written generator before did.
THINK_TIME_S = 0
# No page or search of the demo catalogue takes this long; past it the request is an error.
REQUEST_TIMEOUT_S = 30
# Results asked of the search and similar-items API (the storefront's strip shows 12).
DEFAULT_K = 12
# Noise photos when the plan names none (no clothing_dataset_cc0 on the machine): enough to
# vary the upload, few enough to build at start-up in well under a second.
GENERATED_PHOTOS = 4
GENERATED_PHOTO_SIZE = (360, 480)

_plan: dict = {}
_search_bodies: list[tuple[bytes, str]] = []
_single_search_bodies: list[tuple[bytes, str]] = []
_user_numbers = itertools.count()


@events.init_command_line_parser.add_listener
def _plan_argument(parser) -> None:
    parser.add_argument("--plan", type=str, env_var="VITRINE_LOAD_PLAN", default="", include_in_web_ui=False,
                        help="the traffic plan (JSON) written by manage.py load_test or bench")


@events.init.add_listener
def _plan_load(environment, **_kwargs) -> None:
    options = environment.parsed_options
    path = getattr(options, "plan", "") if options else ""
    if not path:
        raise SystemExit("locustfile: --plan is required (manage.py load_test writes reports/load_plan.json)")
    _plan.clear()
    _plan.update(plan_read(Path(path)))
    photos = plan_photos(_plan)
    _search_bodies[:] = [search_body(photo=photo, k=_plan["k"]) for photo in photos]
    _single_search_bodies[:] = [search_body(photo=photo, k=_plan["k"], detect=False) for photo in photos]


def plan_read(path: Path) -> dict:
    """The plan with its defaults filled in; a ValueError names what is missing or unknown."""
    plan = json.loads(path.read_text())
    plan.setdefault("seed", 0)
    plan.setdefault("k", DEFAULT_K)
    plan.setdefault("mix", {"product": 0.5, "listing": 0.3, "search": 0.2})
    plan.setdefault("api_mix", {"similar": 0.5, "search": 0.5})
    for key, allowed in (("mix", KINDS), ("api_mix", API_KINDS)):
        unknown = set(plan[key]) - set(allowed)
        if unknown:
            raise ValueError(f"plan {key}: unknown kinds {sorted(unknown)}; choose among {', '.join(allowed)}")
        if sum(plan[key].values()) <= 0:
            raise ValueError(f"plan {key}: no positive weight")
    needs = {"product": "slugs", "listing": "listings", "similar": "product_ids"}
    for kind, key in needs.items():
        if (plan["mix"].get(kind, 0) > 0 or plan["api_mix"].get(kind, 0) > 0) and not plan.get(key):
            raise ValueError(f"plan: {kind} requests need {key}")
    return plan


def plan_photos(plan: dict) -> list[bytes]:
    """The plan's photos, read once; seeded noise JPEGs when it names none."""
    paths = plan.get("photos") or []
    if paths:
        return [Path(p).read_bytes() for p in paths]
    return [generated_photo(seed=i) for i in range(GENERATED_PHOTOS)]


def generated_photo(*, seed: int) -> bytes:
    """A seeded noise JPEG, for photo searches when no real photos are at hand."""
    import numpy as np
    from PIL import Image

    width, height = GENERATED_PHOTO_SIZE
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def search_body(*, photo: bytes, k: int, detect: bool = True) -> tuple[bytes, str]:
    """(body, content type) of ``POST /api/search/image``: the photo, ``k`` and, for a single
    search of the whole photo, ``detect=false``."""
    fields = {"k": str(k), "image": ("photo.jpg", photo, "image/jpeg")}
    if not detect:
        fields["detect"] = "false"
    return encode_multipart_formdata(fields)


def request_for(*, kind: str, rng: random.Random, plan: dict) -> tuple[str, str]:
    """(method, path) of the next request of ``kind``, drawn with ``rng``."""
    if kind == "product":
        return "GET", f"/products/{rng.choice(plan['slugs'])}/"
    if kind == "listing":
        return "GET", rng.choice(plan["listings"])
    if kind == "similar":
        return "GET", f"/api/products/{rng.choice(plan['product_ids'])}/similar?k={plan['k']}"
    if kind in ("search", "search_single"):
        return "POST", "/api/search/image"
    raise ValueError(f"unknown kind {kind!r}")


class _PlannedUser(FastHttpUser):
    """Sends the plan's requests, one kind drawn per task from the user's seeded generator."""

    abstract = True
    wait_time = constant(THINK_TIME_S)
    network_timeout = connection_timeout = REQUEST_TIMEOUT_S
    mix_key = "mix"
    keep_cookies = True

    def on_start(self) -> None:
        self.rng = random.Random(f"{_plan['seed']}:{next(_user_numbers)}")
        mix = {kind: weight for kind, weight in _plan[self.mix_key].items() if weight > 0}
        self.kinds, self.weights = list(mix), list(mix.values())

    @task
    def visit(self) -> None:
        kind = self.rng.choices(self.kinds, weights=self.weights)[0]
        method, path = request_for(kind=kind, rng=self.rng, plan=_plan)
        body, headers = None, {}
        if kind in ("search", "search_single"):
            body, content_type = self.rng.choice(_search_bodies if kind == "search" else _single_search_bodies)
            headers["Content-Type"] = content_type
        if not self.keep_cookies:
            self.client.cookiejar.clear()
        with self.client.request(method, path, name=kind, data=body, headers=headers, allow_redirects=False,
                                 catch_response=True) as response:
            # No status: the request failed (refused, reset, timed out) and Locust reports the error itself.
            if response.status_code and not 200 <= response.status_code < 300:
                response.failure(f"HTTP {response.status_code}")


class Shopper(_PlannedUser):
    """A storefront visitor (the load test): product pages, listings, photo searches."""

    mix_key = "mix"
    keep_cookies = True


class ApiClient(_PlannedUser):
    """An app calling the API only (the benchmark's HTTP section): similar items, photo search."""

    mix_key = "api_mix"
    keep_cookies = False
