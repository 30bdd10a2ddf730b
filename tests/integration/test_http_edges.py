"""HTTP edges beyond test_http_ops.py, at the socket level: deeply nested JSON, HEAD
replies, chunked bodies over the limit, pipelined requests, huge headers, short bodies,
idle connections, path traversal, and JSON the parser must refuse without a crash.
Each test checks the gateway process survived (same pid)."""
import json
import socket
import time

import pytest

from test_agents import admin_token, call
from test_auth_otps import raw_request

JSON = {"Content-Type": "application/json"}


def port(stack):
    return int(stack.url.rsplit(":", 1)[1])


def exchange(stack, data, timeout=10, half_close=False):
    """Sends raw bytes on a new connection; returns everything read until the server
    closes (or the timeout, which fails the test: a hang)."""
    with socket.create_connection(("127.0.0.1", port(stack)), timeout=timeout) as s:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before reading everything; read what it said
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
    raise AssertionError(f"no end of reply within {timeout}s; got {out[:200]!r}")


def responses(raw):
    """Splits a byte stream into (status, headers, body) using Content-Length."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw[:200]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip()
                   for k, v in (line.split(":", 1) for line in lines[1:])}
        n = int(headers.get("content-length", len(rest)))
        out.append((status, headers, rest[:n]))
        raw = rest[n:]
    return out


@pytest.fixture
def same_gateway(stack):
    """Fails the test if the gateway process changed (crashed and was restarted)."""
    pid = stack.pid("gateway")
    yield
    try:
        assert stack.pid("gateway") == pid, "the gateway crashed and was restarted"
    finally:
        stack.wait_ready()


@pytest.mark.parametrize("path", ["/api/auth/login/otp", "/api/auth/login/admin"])
def test_deeply_nested_json_is_refused_without_a_crash(stack, same_gateway, path):
    # 2 KB, no token needed: must be a 4xx, never a crashed gateway.
    for depth in (200, 1000, 20000):
        body = b'{"otp_code":' + b"[" * depth + b"]" * depth + b"}"
        try:
            status, _, data = raw_request(stack.url, "POST", path, body, JSON)
        except OSError as err:
            raise AssertionError(f"depth {depth}: connection dropped ({err!r})")
        assert status in (400, 413, 422), (depth, status)
        assert "detail" in json.loads(data)


def test_head_replies_have_no_body(stack, same_gateway):
    for path in ("/healthz", "/readyz", "/api/nope", "/api/agents/list", "/openapi.json"):
        raw = exchange(stack, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       .encode())
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 "), raw[:100]
        assert body == b"", (path, body[:100])
    # On a kept-alive connection a HEAD must not desynchronise the next reply.
    raw = exchange(stack, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200") == 2 and raw.endswith(b'{"status":"ok"}'), raw


def chunked(body, size=8192):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_bodies_obey_the_limit(stack, same_gateway):
    admin = admin_token(stack.url)
    head = ("POST /api/otps/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {admin}\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n").encode()
    big = b'{"count":1,"max_uses":1,"pad":"' + b"x" * (64 * 1024) + b'"}'
    [(status, _, _)] = responses(exchange(stack, head + chunked(big)))
    assert status == 413
    [(status, _, body)] = responses(exchange(stack, head + chunked(b'{"count":1,"max_uses":1}',
                                                                   size=5)))
    assert status == 201 and len(json.loads(body)) == 1


def test_pipelined_requests_are_answered_in_order(stack, same_gateway):
    reqs = b"".join(f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-{i}\r\n\r\n".encode()
                    for i in range(5))
    reqs += b"GET /api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    got = responses(exchange(stack, reqs))
    assert [s for s, _, _ in got] == [200] * 5 + [404]
    assert [h["x-request-id"] for _, h, _ in got[:5]] == [f"pipe-{i}" for i in range(5)]


def test_huge_headers_are_refused_and_the_server_keeps_answering(stack, same_gateway):
    for name in (b"X-Big", b"Authorization"):
        value = b"Bearer " + b"a" * 200000 if name == b"Authorization" else b"a" * 200000
        raw = exchange(stack, b"GET /api/otps/ HTTP/1.1\r\nHost: x\r\n" + name + b": " + value +
                       b"\r\nConnection: close\r\n\r\n")
        status = int(raw.split(b" ", 2)[1]) if raw else 0
        assert raw == b"" or 400 <= status < 500, raw[:100]
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    raw = exchange(stack, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many +
                   b"Connection: close\r\n\r\n")
    assert raw == b"" or raw.startswith(b"HTTP/1.") and raw.split(b" ", 2)[1] != b"500"
    assert call(stack.url, "GET", "/healthz")[0] == 200


def test_a_body_shorter_than_its_content_length_is_a_quick_400(stack, same_gateway):
    t0 = time.time()
    raw = exchange(stack, b"POST /api/auth/login/otp HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                          b'{"otp_code"', half_close=True)
    assert raw.split(b" ", 2)[1] == b"400" and time.time() - t0 < 5


def test_idle_connections_do_not_starve_other_clients(stack, same_gateway):
    """A client that opens connections and sends nothing (slowloris) must not make
    everybody else wait: the contract says no request hangs."""
    idle = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", port(stack)), timeout=5))
        time.sleep(0.3)
        t0 = time.time()
        try:
            status, _ = call(stack.url, "GET", "/healthz", timeout=5)
        except OSError as err:
            status = repr(err)
        waited = time.time() - t0
        assert status == 200 and waited < 3, (status, round(waited, 1))
    finally:
        for s in idle:
            s.close()


def test_path_traversal_never_leaves_the_web_dir(stack, same_gateway):
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/vendor/../../../etc/passwd",
                 "/vendor/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
                 "/%2e%2e%5c%2e%2e%5cetc%5cpasswd", "//etc/passwd", "/../README.md",
                 "/../.git/config", "/.%2e/portal", "/docs/../../CMakeLists.txt"):
        raw = exchange(stack, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                       .encode())
        status = int(raw.split(b" ", 2)[1])
        assert status in (400, 403, 404), (path, raw[:200])
        assert b"root:" not in raw and b"cmake_minimum_required" not in raw, path


def test_json_the_parser_must_refuse(stack, same_gateway):
    admin = admin_token(stack.url)
    auth = dict(JSON, Authorization="Bearer " + admin)
    for body in (b'{"count":1,"max_uses":1,"count":2}', b'{"count":NaN,"max_uses":1}',
                 b'{"count":1e400,"max_uses":1}', b'{"count":99999999999999999999999,"max_uses":1}',
                 b'{"count":1,"max_uses":1}trailing', b'{"count":1,"max_uses":1',
                 b'\xef\xbb\xbf{"count":1,"max_uses":1}', b'{"count":1,\x00"max_uses":1}',
                 b'{"count":"\xc3\x28","max_uses":1}', b"{'count':1,'max_uses':1}"):
        status, _, data = raw_request(stack.url, "POST", "/api/otps/", body, auth)
        assert status in (400, 413, 422), (body[:40], status, data[:200])
        assert "detail" in json.loads(data)
    for code in (b'"12\\u00003456"', b'"\\ud800"', b'"\xff\xfe"', b"123456", b"null", b"[]"):
        status, _, data = raw_request(stack.url, "POST", "/api/auth/login/otp",
                                      b'{"otp_code":' + code + b"}", JSON)
        assert status in (400, 422), (code, status, data[:200])
