"""CORS and operations beyond test_http_ops.py: look-alike origins, CORS headers on
error replies, preflights for the admin's PUT/DELETE, a well-formed Prometheus
exposition whose counters move and whose labels stay bounded, and JSON-line logs."""
import json
import re

from test_agents import admin_token, call
from test_auth_otps import raw_request

ALLOWED = "http://allowed.example"


def preflight(stack, origin, method="POST", path="/api/auth/login/otp",
              req_headers="content-type"):
    return raw_request(stack.url, "OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": req_headers})


def test_look_alike_origins_are_refused(stack):
    for origin in ("http://allowed.example.evil.com", "http://allowed.exampl",
                   "https://allowed.example", "http://allowed.example:8080",
                   "http://evil.example/http://allowed.example", "null",
                   "http://ALLOWED.example.evil", "http://sub.allowed.example", "*", ""):
        status, headers, _ = preflight(stack, origin)
        assert "Access-Control-Allow-Origin" not in headers, origin
        assert status == 400 or not origin, (origin, status)
        _, headers, _ = raw_request(stack.url, "GET", "/healthz", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in headers, origin
        assert "Access-Control-Allow-Credentials" not in headers, origin


def test_allowed_origin_sees_errors_and_can_preflight_admin_calls(stack):
    # A browser must be able to read a 401/422 body to show it.
    status, headers, _ = raw_request(stack.url, "GET", "/api/otps/", headers={"Origin": ALLOWED})
    assert status == 401 and headers.get("Access-Control-Allow-Origin") == ALLOWED
    assert "Origin" in headers.get("Vary", "")
    status, headers, _ = raw_request(stack.url, "POST", "/api/auth/login/otp", b"{}",
                                     {"Origin": ALLOWED, "Content-Type": "application/json"})
    assert status == 422 and headers.get("Access-Control-Allow-Origin") == ALLOWED
    for method, path in (("PUT", "/api/otps/1"), ("DELETE", "/api/otps/1"),
                         ("PUT", "/api/auth/change-password"), ("GET", "/api/otps")):
        status, headers, _ = preflight(stack, ALLOWED, method, path, "authorization,content-type")
        assert status == 200, (method, path)
        assert headers["Access-Control-Allow-Origin"] == ALLOWED
        assert method in headers["Access-Control-Allow-Methods"]
        allowed = headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? '
                    r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$')


def metrics(stack):
    status, headers, data = raw_request(stack.url, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {}
    types = {}
    for line in data.decode().splitlines():
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            assert parts[1] in ("HELP", "TYPE"), line
            if parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        key = line.rsplit(" ", 1)[0]
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(line.rsplit(" ", 1)[1])
    return samples, types


def test_metrics_are_well_formed_and_count(stack):
    series = 'vap_http_requests_total{route="/healthz",method="GET",status="200"}'
    before, types = metrics(stack)
    assert types.get("vap_http_requests_total") == "counter"
    assert types.get("vap_http_request_duration_seconds") == "histogram"
    for _ in range(7):
        assert call(stack.url, "GET", "/healthz")[0] == 200
    after, _ = metrics(stack)
    assert after[series] - before.get(series, 0) == 7
    # histograms: cumulative buckets ending in +Inf == _count, per label set
    buckets = {}
    for key, value in after.items():
        m = re.match(r'(\w+)_bucket\{(.*),le="([^"]+)"\}$', key)
        if m:
            buckets.setdefault((m.group(1), m.group(2)), []).append(
                (float("inf") if m.group(3) == "+Inf" else float(m.group(3)), value))
    assert buckets
    for (name, labels), points in buckets.items():
        points.sort()
        values = [v for _, v in points]
        assert values == sorted(values), (name, labels)
        assert points[-1][0] == float("inf"), (name, labels)
        assert after[f"{name}_count{{{labels}}}"] == values[-1], (name, labels)
        assert f"{name}_sum{{{labels}}}" in after


def test_metric_labels_stay_bounded(stack):
    admin = admin_token(stack.url)
    before, _ = metrics(stack)
    for i in range(30):
        call(stack.url, "GET", f"/no/such/path/{i}")
        call(stack.url, "DELETE", f"/api/otps/{900000000 + i}", token=admin)
        call(stack.url, "GET", f"/api/agents/config/unknown-{i}", token=admin)
    after, _ = metrics(stack)
    assert not any("/no/such" in k or "9000000" in k or "unknown-" in k for k in after)
    new = [k for k in after if k not in before and k.startswith("vap_http_requests_total{")]
    assert len(new) <= 6, new  # a few new route/status combinations, not one per path


def test_service_logs_are_json_lines(stack):
    call(stack.url, "GET", "/api/nope")
    for name in stack.services:
        text = stack.log_text(name)
        assert text, name
        if any(mark in text for mark in ("AddressSanitizer", "runtime error:", "LeakSanitizer")):
            continue  # a sanitizer report (the session fails on it anyway)
        for line in text.splitlines():
            entry = json.loads(line)
            assert {"ts", "level", "service", "msg"} <= set(entry), line
            assert entry["level"] in ("debug", "info", "warn", "error"), line
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", entry["ts"]), line
