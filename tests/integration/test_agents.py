"""Agents, access and usage tracking, black box through the gateway.

Covers: the agent list and public config, access decrementing and stopping at zero,
exactly min(N, k) grants under concurrency, admin access not counted, and usage and
traffic reflecting every access.
"""
import concurrent.futures
import json
import time
import urllib.error
import urllib.request

ADMIN = {"username": "cawadmin", "password": "adminc@w"}


def call(base, method, path, body=None, token=None, timeout=10):
    """One HTTP request; returns (status, parsed JSON or None)."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw


def admin_token(base):
    status, body = call(base, "POST", "/api/auth/login/admin", ADMIN)
    assert status == 200, body
    return body["access_token"]


def new_otp(base, admin, max_uses):
    status, body = call(base, "POST", "/api/otps/", {"count": 1, "max_uses": max_uses}, admin)
    assert status == 201, body
    return body[0]


def otp_token(base, code):
    status, body = call(base, "POST", "/api/auth/login/otp", {"otp_code": code})
    assert status == 200, body
    return body["access_token"]


def usage_rows(base, admin, otp_id, expect=None, wait_s=5.0):
    """Usage rows of one OTP; waits up to wait_s for `expect` rows to appear."""
    deadline = time.time() + wait_s
    while True:
        rows, offset = [], 0
        while True:
            status, page = call(base, "GET", f"/api/agents/usage?limit=1000&offset={offset}",
                                token=admin)
            assert status == 200, page
            rows += [r for r in page if r["otp_id"] == otp_id]
            if len(page) < 1000:
                break
            offset += 1000
        if expect is None or len(rows) >= expect or time.time() > deadline:
            return rows
        time.sleep(0.1)


def test_agent_list_is_a_bare_array_of_the_configured_agents(stack):
    admin = admin_token(stack.url)
    status, body = call(stack.url, "GET", "/api/agents/list", token=admin)
    assert status == 200
    ids = {a["id"] for a in body}
    assert {"realestate", "hospital"} <= ids
    for agent in body:
        assert set(agent) == {"id", "name", "description"}


def test_agent_list_works_for_otp_tokens_and_needs_a_token(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 1)
    status, _ = call(stack.url, "GET", "/api/agents/list", token=otp_token(stack.url, otp["code"]))
    assert status == 200
    status, _ = call(stack.url, "GET", "/api/agents/list")
    assert status == 401


def test_agent_config_is_public_and_has_no_secrets_or_offline_data(stack):
    admin = admin_token(stack.url)
    status, cfg = call(stack.url, "GET", "/api/agents/config/hospital", token=admin)
    assert status == 200
    for field in ("id", "name", "description", "startup_message", "voice", "language"):
        assert field in cfg
    text = json.dumps(cfg).lower()
    assert "api_key" not in text and "offline" not in cfg and "doctor patel" not in text


def test_unknown_agent_is_404_for_config_and_access(stack):
    admin = admin_token(stack.url)
    status, body = call(stack.url, "GET", "/api/agents/config/nope", token=admin)
    assert status == 404 and body["detail"] == "Agent not found"
    otp = new_otp(stack.url, admin, 1)
    token = otp_token(stack.url, otp["code"])
    status, _ = call(stack.url, "POST", "/api/agents/access", {"agent_type": "nope"}, token)
    assert status == 404
    status, _ = call(stack.url, "POST", "/api/agents/access", {"agent_type": "' OR 1=1 --"}, token)
    assert status == 404
    status, _ = call(stack.url, "POST", "/api/agents/access", {"agent_type": 5}, token)
    assert status == 422


def test_access_decrements_and_stops_at_zero(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 2)
    token = otp_token(stack.url, otp["code"])
    status, body = call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)
    assert status == 200
    assert body == {"message": "Access granted", "agent_type": "hospital", "remaining_uses": 1}
    status, body = call(stack.url, "POST", "/api/agents/access", {"agent_type": "realestate"}, token)
    assert status == 200 and body["remaining_uses"] == 0
    status, body = call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)
    assert status == 403 and "remaining" in body["detail"]
    # an exhausted code can no longer log in
    status, _ = call(stack.url, "POST", "/api/auth/login/otp", {"otp_code": otp["code"]})
    assert status == 403
    status, listed = call(stack.url, "GET", "/api/otps/", token=admin)
    mine = [o for o in listed if o["id"] == otp["id"]][0]
    assert mine["used_count"] == 2 and mine["remaining_uses"] == 0
    assert mine["last_used_at"] is not None


def test_concurrent_accesses_grant_exactly_max_uses(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 10)
    token = otp_token(stack.url, otp["code"])

    def access(_):
        return call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
        statuses = list(pool.map(access, range(60)))
    assert statuses.count(200) == 10, statuses
    assert statuses.count(403) == 50, statuses
    assert len(usage_rows(stack.url, admin, otp["id"], expect=10)) == 10


def test_admin_access_is_allowed_and_not_counted(stack):
    admin = admin_token(stack.url)
    status, before = call(stack.url, "GET", "/api/agents/traffic", token=admin)
    assert status == 200
    status, body = call(stack.url, "POST", "/api/agents/access", {"agent_type": "realestate"}, admin)
    assert status == 200 and body["remaining_uses"] is None
    time.sleep(0.5)
    status, after = call(stack.url, "GET", "/api/agents/traffic", token=admin)
    count = {r["agent_type"]: r["total_accesses"] for r in before}
    assert {r["agent_type"]: r["total_accesses"] for r in after} == count


def test_deleted_otp_token_cannot_access(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 5)
    token = otp_token(stack.url, otp["code"])
    status, _ = call(stack.url, "DELETE", f"/api/otps/{otp['id']}", token=admin)
    assert status == 200
    time.sleep(1.0)
    status, _ = call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)
    assert status == 401


def test_usage_and_traffic_reflect_every_access(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 5)
    token = otp_token(stack.url, otp["code"])
    status, before = call(stack.url, "GET", "/api/agents/traffic", token=admin)
    for agent in ("hospital", "hospital", "realestate"):
        status, _ = call(stack.url, "POST", "/api/agents/access", {"agent_type": agent}, token)
        assert status == 200
    rows = usage_rows(stack.url, admin, otp["id"], expect=3)
    assert len(rows) == 3
    for row in rows:
        assert set(row) == {"id", "otp_id", "agent_type", "accessed_at", "session_id",
                            "duration_seconds"}
        assert row["accessed_at"].endswith("Z")
    # newest first
    times = [r["accessed_at"] for r in rows]
    assert times == sorted(times, reverse=True)
    status, hospital_only = call(stack.url, "GET", "/api/agents/usage?agent_type=hospital&limit=1000",
                                 token=admin)
    assert status == 200 and {r["agent_type"] for r in hospital_only} == {"hospital"}
    status, after = call(stack.url, "GET", "/api/agents/traffic", token=admin)
    assert status == 200
    old = {r["agent_type"]: r for r in before}
    new = {r["agent_type"]: r for r in after}
    assert {"hospital", "realestate"} <= set(new)
    assert new["hospital"]["total_accesses"] - old["hospital"]["total_accesses"] == 2
    assert new["realestate"]["total_accesses"] - old["realestate"]["total_accesses"] == 1
    assert new["hospital"]["last_accessed"] is not None
    for row in after:
        assert set(row) >= {"agent_type", "total_accesses", "unique_users", "total_sessions",
                            "total_session_seconds", "last_accessed"}


def test_traffic_hourly_series_and_filters_are_validated(stack):
    admin = admin_token(stack.url)
    status, series = call(stack.url, "GET", "/api/agents/traffic?bucket=hour", token=admin)
    assert status == 200
    for row in series:
        assert row["hour"].endswith(":00:00Z")
    status, _ = call(stack.url, "GET", "/api/agents/usage?bucket=hour&since=2026-01-01T00:00:00Z",
                     token=admin)
    assert status == 200
    for bad in ("since=yesterday", "limit=0", "limit=abc", "offset=-1"):
        status, body = call(stack.url, "GET", f"/api/agents/usage?{bad}", token=admin)
        assert status == 422, (bad, body)
    status, _ = call(stack.url, "GET", "/api/agents/traffic?bucket=day", token=admin)
    assert status == 422


def test_usage_and_traffic_are_admin_only(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 1)
    token = otp_token(stack.url, otp["code"])
    for path in ("/api/agents/usage", "/api/agents/traffic"):
        assert call(stack.url, "GET", path, token=token)[0] == 403
        assert call(stack.url, "GET", path)[0] == 401
