import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.benchmarks.http_load import LOOPBACK, Request, api_requests, load_run, multipart_body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        status = 404 if "missing" in self.path else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200 if b'name="image"' in body else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_load_stops_at_the_request_cap_and_counts_statuses(stub_server):
    result = load_run(
        port=stub_server,
        make_request=lambda i: Request("GET", "/missing" if i % 4 == 0 else "/ok"),
        clients=3,
        seconds=30,
        max_requests=40,
        warmup=2,
    )
    assert result["requests"] == 40
    assert result["statuses"] == {"200": 30, "404": 10}
    assert result["ok"] == 30 and result["errors"] == 10
    assert result["p50"] > 0 and result["throughput_rps"] > 0


def test_load_stops_at_the_time_limit(stub_server):
    result = load_run(port=stub_server, make_request=lambda i: Request("GET", "/ok"), clients=2, seconds=0.3, max_requests=10**9)
    assert result["seconds"] < 5
    assert 0 < result["requests"] < 10**9


def test_api_requests_build_both_endpoints(stub_server):
    makers = api_requests([5, 7], [b"\xff\xd8jpeg"], k=3)
    assert makers["similar"](1).path == "/api/products/7/similar?k=3"
    search = makers["search_image"](0)
    assert search.method == "POST" and search.content_type.startswith("multipart/form-data; boundary=")
    result = load_run(port=stub_server, make_request=makers["search_image"], clients=1, seconds=10, max_requests=3)
    assert result["statuses"] == {"200": 3}


def test_multipart_body_has_fields_and_file():
    body, ctype = multipart_body({"k": "5"}, {"image": ("a.jpg", b"DATA", "image/jpeg")})
    boundary = ctype.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="k"\r\n\r\n5\r\n' in body
    assert b'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\nDATA\r\n' in body
