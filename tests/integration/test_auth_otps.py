"""Authentication and one-time codes, black box through the gateway: logins (form and
JSON), token shape and tampering, role checks, OTP CRUD and validation, OTP login,
revocation across gateways, password change, throttling."""
import base64
import hashlib
import hmac
import http.client
import json
import time
import urllib.parse

from test_agents import ADMIN, admin_token, call, new_otp, otp_token


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token):
    head, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(head))),
            json.loads(base64.urlsafe_b64decode(pad(payload))))


def forge(header, payload, key):
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest() if key else b""
    return signing + "." + b64url(sig)


def raw_request(base, method, path, body=b"", headers=None, source=None):
    """http.client request (optionally from another source address)."""
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10,
                                      source_address=(source, 0) if source else None)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def test_admin_login_with_form_and_json_gives_a_bearer_token(stack):
    body = urllib.parse.urlencode(ADMIN).encode()
    status, _, data = raw_request(stack.url, "POST", "/api/auth/login/admin", body,
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    token = json.loads(data)
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    head, claims = jwt_parts(token["access_token"])
    assert head["alg"] == "HS256"
    assert claims["sub"] == "cawadmin" and claims["role"] == "admin"
    assert claims["exp"] > claims["iat"] and claims["jti"]
    status, body = call(stack.url, "POST", "/api/auth/login/admin", ADMIN)
    assert status == 200 and body["token_type"] == "bearer"


def test_swagger_oauth2_form_with_extra_fields_logs_in(stack):
    body = urllib.parse.urlencode(dict(ADMIN, grant_type="password", scope="")).encode()
    status, _, _ = raw_request(stack.url, "POST", "/api/auth/login/admin", body,
                               {"Content-Type": "application/x-www-form-urlencoded",
                                "Authorization": "Basic Og=="})
    assert status == 200


def test_wrong_admin_password_is_401_with_www_authenticate(stack):
    status, headers, data = raw_request(
        stack.url, "POST", "/api/auth/login/admin",
        json.dumps({"username": "cawadmin", "password": "wrong-one"}).encode(),
        {"Content-Type": "application/json"}, source="127.0.0.9")
    assert status == 401
    assert json.loads(data) == {"detail": "Incorrect username or password"}
    assert headers.get("WWW-Authenticate") == "Bearer"


def test_login_missing_fields_is_422(stack):
    status, body = call(stack.url, "POST", "/api/auth/login/admin", {"username": "cawadmin"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "password"]
    status, _, _ = raw_request(stack.url, "POST", "/api/auth/login/admin", b"username=x",
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 422


def test_tampered_tokens_are_refused(stack):
    admin = admin_token(stack.url)
    _, claims = jwt_parts(admin)
    now = int(time.time())
    bad = [
        forge({"alg": "none", "typ": "JWT"}, claims, None),
        forge({"alg": "HS256", "typ": "JWT"}, claims, b"another-key"),
        forge({"alg": "HS256", "typ": "JWT"}, dict(claims, exp=now - 10), b"x"),
        admin[:-3] + ("AAA" if not admin.endswith("AAA") else "BBB"),
        "garbage", "a.b.c",
    ]
    for token in bad:
        status, body = call(stack.url, "GET", "/api/otps/", token=token)
        assert status == 401, (token, body)
    status, headers, _ = raw_request(stack.url, "GET", "/api/otps/")
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"


def test_expired_token_signed_with_the_right_key_is_refused(stack):
    key = stack.env["SECRET_KEY"].encode()
    now = int(time.time())
    claims = {"sub": "cawadmin", "role": "admin", "iat": now - 100, "exp": now - 1,
              "jti": "x", "pwv": 1}
    assert call(stack.url, "GET", "/api/otps/", token=forge({"alg": "HS256"}, claims, key))[0] == 401
    claims["exp"] = now + 60
    assert call(stack.url, "GET", "/api/otps/", token=forge({"alg": "HS256"}, claims, key))[0] == 200


def test_otp_crud(stack):
    admin = admin_token(stack.url)
    status, created = call(stack.url, "POST", "/api/otps/", {"count": 3, "max_uses": 2}, admin)
    assert status == 201 and len(created) == 3
    codes = {o["code"] for o in created}
    assert len(codes) == 3 and all(len(c) == 6 and c.isdigit() for c in codes)
    for otp in created:
        assert otp["used_count"] == 0 and otp["remaining_uses"] == 2 and otp["is_active"]
        assert otp["created_at"].endswith("Z") and otp["last_used_at"] is None
    ids = sorted(o["id"] for o in created)
    for path in ("/api/otps/", "/api/otps"):
        status, listed = call(stack.url, "GET", path, token=admin)
        assert status == 200
        listed_ids = [o["id"] for o in listed]
        assert listed_ids == sorted(listed_ids, reverse=True)  # newest first
        assert set(ids) <= set(listed_ids)
    status, page = call(stack.url, "GET", "/api/otps/?limit=2&offset=1", token=admin)
    assert status == 200 and len(page) == 2
    status, body = call(stack.url, "PUT", f"/api/otps/{ids[0]}", {"max_uses": 5}, admin)
    assert status == 200 and body["max_uses"] == 5 and body["remaining_uses"] == 5
    status, body = call(stack.url, "PUT", f"/api/otps/{ids[0]}", {"is_active": False}, admin)
    assert status == 200 and body["is_active"] is False
    status, active = call(stack.url, "GET", "/api/otps/?active=true", token=admin)
    assert ids[0] not in [o["id"] for o in active] and all(o["is_active"] for o in active)
    status, body = call(stack.url, "DELETE", f"/api/otps/{ids[1]}", token=admin)
    assert status == 200 and body == {"message": "OTP deleted"}
    assert call(stack.url, "DELETE", f"/api/otps/{ids[1]}", token=admin)[0] == 404
    status, listed = call(stack.url, "GET", "/api/otps/", token=admin)
    assert ids[1] not in [o["id"] for o in listed]


def test_otp_update_errors(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 2)
    token = otp_token(stack.url, otp["code"])
    assert call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)[0] == 200
    status, body = call(stack.url, "PUT", f"/api/otps/{otp['id']}", {"max_uses": 0}, admin)
    assert status == 422
    # below used_count (1) is a conflict, equal is fine
    status, body = call(stack.url, "PUT", f"/api/otps/{otp['id']}", {"max_uses": 1}, admin)
    assert status == 200
    otp2 = new_otp(stack.url, admin, 3)
    token2 = otp_token(stack.url, otp2["code"])
    for _ in range(2):
        call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token2)
    status, body = call(stack.url, "PUT", f"/api/otps/{otp2['id']}", {"max_uses": 1}, admin)
    assert status == 409, body
    assert call(stack.url, "PUT", f"/api/otps/{otp['id']}", {}, admin)[0] == 422
    assert call(stack.url, "PUT", "/api/otps/999999999", {"max_uses": 3}, admin)[0] == 404
    for bad_id in ("abc", "1%20OR%201=1", "1;DROP%20TABLE%20otps", "-1", "0"):
        status, _ = call(stack.url, "PUT", f"/api/otps/{bad_id}", {"max_uses": 3}, admin)
        assert status in (404, 422), bad_id
        status, _ = call(stack.url, "DELETE", f"/api/otps/{bad_id}", token=admin)
        assert status in (404, 422), bad_id


def test_otp_create_validation(stack):
    admin = admin_token(stack.url)
    cases = [({"count": 0, "max_uses": 1}, "count"), ({"count": 1001, "max_uses": 1}, "count"),
             ({"count": "3", "max_uses": 1}, "count"), ({"count": None, "max_uses": 1}, "count"),
             ({"count": 1, "max_uses": 0}, "max_uses"), ({"count": 1, "max_uses": 100001}, "max_uses"),
             ({"count": 1, "max_uses": 1.5}, "max_uses"), ({"count": True, "max_uses": 1}, "count")]
    for body, field in cases:
        status, resp = call(stack.url, "POST", "/api/otps/", body, admin)
        assert status == 422, (body, resp)
        assert ["body", field] in [e["loc"] for e in resp["detail"]], resp
        assert all({"loc", "msg", "type"} <= set(e) for e in resp["detail"])
    status, created = call(stack.url, "POST", "/api/otps/", {"count": 1000, "max_uses": 1}, admin)
    assert status == 201 and len(created) == 1000 and len({o["code"] for o in created}) == 1000


def test_otp_token_on_admin_routes_is_403(stack):
    admin = admin_token(stack.url)
    token = otp_token(stack.url, new_otp(stack.url, admin, 1)["code"])
    _, claims = jwt_parts(token)
    assert claims["role"] == "otp"
    for method, path in (("GET", "/api/otps/"), ("POST", "/api/otps/"),
                         ("DELETE", "/api/otps/1"), ("PUT", "/api/auth/change-password")):
        body = {"count": 1, "max_uses": 1} if method == "POST" else None
        if path.endswith("password"):
            body = {"current_password": "x", "new_password": "yyyyyyyy"}
        assert call(stack.url, method, path, body, token)[0] == 403, path


def test_otp_login_cases(stack):
    admin = admin_token(stack.url)
    otp = new_otp(stack.url, admin, 1)
    assert call(stack.url, "POST", "/api/auth/login/otp", {"otp_code": otp["code"]})[0] == 200
    # login does not consume a use
    assert call(stack.url, "POST", "/api/auth/login/otp", {"otp_code": otp["code"]})[0] == 200
    status, body = call(stack.url, "PUT", f"/api/otps/{otp['id']}", {"is_active": False}, admin)
    assert status == 200
    assert call(stack.url, "POST", "/api/auth/login/otp", {"otp_code": otp["code"]})[0] == 403
    status, _ = call(stack.url, "POST", "/api/auth/login/otp", {"otp_code": 123456})
    assert status == 422
    other = new_otp(stack.url, admin, 1)
    token = otp_token(stack.url, other["code"])
    assert call(stack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)[0] == 200
    status, body = call(stack.url, "POST", "/api/auth/login/otp", {"otp_code": other["code"]})
    assert status == 403 and "remaining" in body["detail"]


def test_unknown_code_is_401(fresh_stack):
    status, body = call(fresh_stack.url, "POST", "/api/auth/login/otp", {"otp_code": "000001"})
    assert status in (401, 403) and "detail" in body


def test_deleting_or_deactivating_an_otp_revokes_its_tokens_on_every_gateway(stack):
    admin = admin_token(stack.url)
    other_gateway = stack.start_extra_gateway()
    for action in ("delete", "deactivate"):
        otp = new_otp(stack.url, admin, 3)
        token = otp_token(stack.url, otp["code"])
        for base in (stack.url, other_gateway):
            assert call(base, "GET", "/api/agents/list", token=token)[0] == 200
        if action == "delete":
            assert call(stack.url, "DELETE", f"/api/otps/{otp['id']}", token=admin)[0] == 200
        else:
            assert call(stack.url, "PUT", f"/api/otps/{otp['id']}", {"is_active": False},
                        admin)[0] == 200
        time.sleep(1.0)
        for base in (stack.url, other_gateway):
            assert call(base, "GET", "/api/agents/list", token=token)[0] == 401, (action, base)


def test_password_change_revokes_old_admin_tokens(fresh_stack):
    base = fresh_stack.url
    old = admin_token(base)
    body = {"current_password": "wrong-password", "new_password": "a-new-password-1"}
    assert call(base, "PUT", "/api/auth/change-password", body, old)[0] == 400
    for new in ("short", "x" * 129, "adminc@w"):
        body = {"current_password": "adminc@w", "new_password": new}
        assert call(base, "PUT", "/api/auth/change-password", body, old)[0] == 422, new
    body = {"current_password": "adminc@w", "new_password": "a-new-password-1"}
    status, resp = call(base, "PUT", "/api/auth/change-password", body, old)
    assert status == 200 and resp == {"message": "Password changed successfully"}
    time.sleep(1.0)
    assert call(base, "GET", "/api/otps/", token=old)[0] == 401
    assert call(base, "POST", "/api/auth/login/admin", ADMIN)[0] == 401
    status, tok = call(base, "POST", "/api/auth/login/admin",
                       {"username": "cawadmin", "password": "a-new-password-1"})
    assert status == 200
    assert call(base, "GET", "/api/otps/", token=tok["access_token"])[0] == 200


def test_admin_brute_force_is_throttled_but_other_addresses_still_log_in(fresh_stack):
    base = fresh_stack.url
    wrong = json.dumps({"username": "cawadmin", "password": "guess"}).encode()
    headers = {"Content-Type": "application/json"}
    statuses = []
    for _ in range(20):
        status, hdrs, _ = raw_request(base, "POST", "/api/auth/login/admin", wrong, headers,
                                      source="127.0.0.1")
        statuses.append(status)
        if status == 429:
            assert int(hdrs["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429, statuses
    right = json.dumps(ADMIN).encode()
    # blocked from the guessing address, even with the right password
    assert raw_request(base, "POST", "/api/auth/login/admin", right, headers,
                       source="127.0.0.1")[0] == 429
    assert raw_request(base, "POST", "/api/auth/login/admin", right, headers,
                       source="127.0.0.2")[0] == 200


def test_otp_guessing_is_throttled_per_address(fresh_stack):
    base = fresh_stack.url
    admin = admin_token(base)
    code = new_otp(base, admin, 1)["code"]
    headers = {"Content-Type": "application/json"}
    last = None
    for i in range(20):
        guess = json.dumps({"otp_code": f"{(int(code) + 1 + i) % 1000000:06d}"}).encode()
        last, hdrs, _ = raw_request(base, "POST", "/api/auth/login/otp", guess, headers,
                                    source="127.0.0.3")
        if last == 429:
            assert int(hdrs["Retry-After"]) >= 1
            break
    assert last == 429
    good = json.dumps({"otp_code": code}).encode()
    assert raw_request(base, "POST", "/api/auth/login/otp", good, headers,
                       source="127.0.0.4")[0] == 200
