"""The Locust runner and its summary, and the locustfile run for real against a stub server
(no Django: Locust runs in its own process, as it does for load_test and bench)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.benchmarks.locust_run import (
    entry_summary,
    histogram_percentile,
    locust_command,
    locust_run,
    plan_write,
    stats_summary,
)


def entry(name, method, times, *, failures=0, start=100.0, last=110.0):
    """A Locust stats entry as ``--json-file`` writes it: {rounded ms (a string): count}."""
    return {
        "name": name, "method": method, "start_time": start, "last_request_timestamp": last,
        "num_requests": sum(times.values()), "num_none_requests": 0, "num_failures": failures,
        "total_response_time": float(sum(int(ms) * n for ms, n in times.items())), "response_times": times,
    }


FAILURES_CSV = (
    "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
    "GET,product,CatchResponseError('HTTP 404'),3,2026-12-01T06:34:15Z,2026-12-01T06:34:16Z\n"
)


def test_stats_summary_adds_up_the_kinds_and_reads_the_failures():
    entries = [
        entry("product", "GET", {"10": 90, "20": 10}, failures=3),
        entry("search", "POST", {"40": 50, "200": 50}, start=102.0, last=108.0),
    ]
    summary = stats_summary(entries=entries, failures_csv=FAILURES_CSV)

    assert summary["requests"] == 200 and summary["errors"] == 3 and summary["ok"] == 197
    assert summary["throughput_rps"] == pytest.approx(200 / 10.0)  # first start to last request, all kinds
    # Locust's rule: the sample of rank int(n * p) from 0 (100 of 200: the first 40 ms request).
    assert summary["p50"] == 40.0 and summary["p95"] == 200.0 and summary["p99"] == 200.0
    assert summary["mean"] == pytest.approx((900 + 200 + 2000 + 10000) / 200)
    product, search = summary["by_kind"]["product"], summary["by_kind"]["search"]
    assert list(summary["by_kind"]) == ["product", "search"]
    assert product["requests"] == 100 and product["errors"] == 3 and product["p50"] == pytest.approx(10.0)
    # Each kind's rate over the whole run (10 s), not from its own first request (6 s).
    assert search["p95"] == pytest.approx(200.0) and search["throughput_rps"] == pytest.approx(100 / 10.0)
    assert entry_summary(entries[1:])["throughput_rps"] == pytest.approx(100 / 6.0)
    assert summary["failures"] == [{"kind": "product", "method": "GET", "error": "CatchResponseError('HTTP 404')", "occurrences": 3}]


def test_histogram_percentile_follows_locusts_rule():
    histogram = {10: 90, 20: 10}
    assert histogram_percentile(histogram, 0.5) == 10.0
    assert histogram_percentile(histogram, 0.9) == 20.0  # rank 90: the first 20 ms request
    assert histogram_percentile(histogram, 0.89) == 10.0
    assert histogram_percentile(histogram, 1.0) == 20.0
    assert histogram_percentile({}, 0.5) is None


def test_a_kind_without_timed_requests_has_no_percentiles():
    summary = entry_summary([{**entry("search", "POST", {}), "last_request_timestamp": None}])
    assert summary["requests"] == 0 and summary["throughput_rps"] == 0.0
    assert summary["p50"] is None and summary["mean"] is None
    assert stats_summary(entries=[entry("listing", "GET", {"5": 1})])["failures"] == []


def test_locust_command_is_headless_bounded_and_writes_every_report(tmp_path):
    command = locust_command(host="http://127.0.0.1:9", user_class="Shopper", users=4, seconds=2.5,
                             plan_path=tmp_path / "plan.json", report_prefix=tmp_path / "load_u4")
    text = " ".join(command)
    assert command[1:3] == ["-m", "locust"] and "Shopper" in command and "--headless" in command
    assert "-u 4 -r 4 -t 3s" in text  # whole seconds, rounded up
    assert f"--csv {tmp_path}/load_u4 --html {tmp_path}/load_u4.html --json-file {tmp_path}/load_u4" in text


class StubShop(BaseHTTPRequestHandler):
    """Answers like the shop would, 404 for the product "gone", and records what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_GET(self):  # noqa: N802
        self.seen.append(("GET", self.path, self.headers.get("Cookie")))
        status = 404 if "/gone/" in self.path else 200
        self.send_response(status)
        self.send_header("Set-Cookie", "sessionid=abc; Path=/")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = b'name="image"; filename="photo.jpg"' in body and b'name="k"\r\n\r\n12\r\n' in body
        self.seen.append(("POST", self.path, ok))
        self.send_response(200 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_shop():
    StubShop.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubShop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


PLAN = {
    "seed": 0,
    "mix": {"product": 0.4, "listing": 0.2, "search": 0.2, "similar": 0.2},
    "slugs": ["red-dress", "gone"],
    "product_ids": [7],
    "listings": ["/products/?category=dresses&sort=title&page=2"],
    "photos": [],  # generated noise JPEGs
}


@pytest.mark.slow
def test_shoppers_send_the_planned_mix_named_by_kind_and_count_non_2xx_as_errors(stub_shop, tmp_path):
    plan_path = plan_write(path=tmp_path / "plan.json", plan=PLAN)
    level = locust_run(host=stub_shop, user_class="Shopper", users=2, seconds=2, plan_path=plan_path,
                       report_prefix=tmp_path / "load_u2")

    seen = StubShop.seen
    assert level["users"] == 2 and level["requests"] > 0 and level["locust_cpu_seconds"] > 0
    assert level["requests"] == len(seen)  # Locust's final numbers count every request sent
    assert set(level["by_kind"]) == {"product", "listing", "search", "similar"}
    gone = sum(path == "/products/gone/" for _, path, _ in seen)
    assert gone > 0 and level["errors"] == gone == level["by_kind"]["product"]["errors"]
    assert {path for method, path, _ in seen if method == "GET"} <= {
        "/products/red-dress/", "/products/gone/", "/products/?category=dresses&sort=title&page=2", "/api/products/7/similar?k=12",
    }
    assert all(ok for method, _, ok in seen if method == "POST")  # multipart photo and k
    assert any(cookie == "sessionid=abc" for method, _, cookie in seen if method == "GET")  # a browser's session
    for path in ("load_u2.html", "load_u2.json", "load_u2_stats.csv", "load_u2_failures.csv"):
        assert (tmp_path / path).stat().st_size > 0


@pytest.mark.slow
def test_api_clients_send_api_requests_only_without_cookies(stub_shop, tmp_path):
    plan_path = plan_write(path=tmp_path / "plan.json", plan={**PLAN, "api_mix": {"similar": 1}})
    level = locust_run(host=stub_shop, user_class="ApiClient", users=1, seconds=1, plan_path=plan_path,
                       report_prefix=tmp_path / "api_u1")
    assert level["errors"] == 0 and set(level["by_kind"]) == {"similar"}
    assert {(method, path, cookie) for method, path, cookie in StubShop.seen} == {("GET", "/api/products/7/similar?k=12", None)}


@pytest.mark.slow
def test_a_plan_the_locustfile_cannot_run_fails_the_run(stub_shop, tmp_path):
    plan_path = plan_write(path=tmp_path / "plan.json", plan={**PLAN, "mix": {"checkout": 1}})
    with pytest.raises(RuntimeError, match="unknown kinds"):
        locust_run(host=stub_shop, user_class="Shopper", users=1, seconds=1, plan_path=plan_path,
                   report_prefix=tmp_path / "bad")
    assert StubShop.seen == []
