"""Token and login edges beyond test_auth_otps.py: every protected route refuses a
missing or non-bearer token the same way; tokens signed with the right key but with
broken claims or another algorithm are refused; login replies are not cached, do not
tell unknown usernames apart, and issue distinct, consistent tokens."""
import hashlib
import hmac
import json
import time

from test_agents import ADMIN, admin_token, call, new_otp, otp_token
from test_auth_otps import b64url, forge, jwt_parts, raw_request

PROTECTED = [
    ("GET", "/api/otps/", None),
    ("GET", "/api/otps", None),
    ("POST", "/api/otps/", {"count": 1, "max_uses": 1}),
    ("PUT", "/api/otps/1", {"max_uses": 2}),
    ("DELETE", "/api/otps/1", None),
    ("PUT", "/api/auth/change-password", {"current_password": "x", "new_password": "yyyyyyyy"}),
    ("GET", "/api/agents/list", None),
    ("GET", "/api/agents/config/realestate", None),
    ("POST", "/api/agents/access", {"agent_type": "realestate"}),
    ("GET", "/api/agents/usage", None),
    ("GET", "/api/agents/traffic", None),
]


def _request(base, method, path, body, authorization=None):
    headers = {}
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if authorization is not None:
        headers["Authorization"] = authorization
    return raw_request(base, method, path, data, headers)


def test_every_protected_route_refuses_a_missing_or_non_bearer_token(stack):
    variants = [None, "", "Bearer", "Bearer ", "Basic Y2F3YWRtaW46YWRtaW5jQHc=", "Token abc",
                "Bearer a.b", "Bearer ..."]
    for method, path, body in PROTECTED:
        for authorization in variants:
            status, headers, raw = _request(stack.url, method, path, body, authorization)
            assert status == 401, (method, path, authorization, status, raw)
            assert headers.get("WWW-Authenticate") == "Bearer", (method, path, authorization)
            assert isinstance(json.loads(raw)["detail"], str)


def test_right_key_but_broken_claims_or_another_alg_is_refused(stack):
    key = stack.env["SECRET_KEY"].encode()
    _, claims = jwt_parts(admin_token(stack.url))
    head = {"alg": "HS256", "typ": "JWT"}
    # The harness itself is right: the same claims re-signed with the key are accepted.
    assert call(stack.url, "GET", "/api/otps/?limit=1", token=forge(head, claims, key))[0] == 200

    def without(name):
        return {k: v for k, v in claims.items() if k != name}

    bad_claims = [
        dict(claims, role="superadmin"), dict(claims, role="ADMIN"), dict(claims, role=None),
        without("role"), without("sub"), without("exp"), without("jti"),
        dict(claims, exp=str(claims["exp"])), dict(claims, exp=float(claims["exp"]) + 0.5),
        dict(claims, exp=int(time.time()) - 1), dict(claims, sub=["cawadmin"]),
    ]
    for bad in bad_claims:
        status, body = call(stack.url, "GET", "/api/otps/?limit=1", token=forge(head, bad, key))
        assert status == 401, (bad, body)

    signing = b64url(json.dumps({"alg": "HS512", "typ": "JWT"}).encode()) + "." + \
        b64url(json.dumps(claims).encode())
    hs512 = signing + "." + b64url(hmac.new(key, signing.encode(), hashlib.sha512).digest())
    good = forge(head, claims, key)
    h, p, s = good.split(".")
    tokens = [
        hs512,
        forge({"alg": "hs256", "typ": "JWT"}, claims, key),
        forge({"typ": "JWT"}, claims, key),
        forge({"alg": "none"}, claims, key),
        forge({"alg": ["HS256"]}, claims, key),
        f"{h}.{p}.",                       # no signature
        f"{h}.{p}.{s[:-4]}",               # truncated signature
        f"{h}.{p}.{s}.{s}",                # four segments
        f"{h}.{p}",                        # two segments
        f"{h}.{p}.{s}=",                   # padding is not base64url-without-padding
        f"{h} .{p}.{s}",
        good + "x" * 6000,                 # long, still under civetweb's header limit
    ]
    for token in tokens:
        status, body = call(stack.url, "GET", "/api/otps/?limit=1", token=token)
        assert status == 401, (token[:80], body)
    assert call(stack.url, "GET", "/healthz")[0] == 200


def test_an_otp_role_token_signed_with_the_key_is_still_only_a_visitor(stack):
    key = stack.env["SECRET_KEY"].encode()
    admin = admin_token(stack.url)
    _, claims = jwt_parts(otp_token(stack.url, new_otp(stack.url, admin, 1)["code"]))
    assert claims["role"] == "otp"
    token = forge({"alg": "HS256", "typ": "JWT"}, claims, key)
    assert call(stack.url, "GET", "/api/agents/list", token=token)[0] == 200
    assert call(stack.url, "GET", "/api/otps/", token=token)[0] == 403


def test_unknown_username_and_wrong_password_look_the_same(stack):
    replies = []
    for creds in ({"username": "nobody-here", "password": "adminc@w"},
                  {"username": "cawadmin", "password": "not-the-password"},
                  {"username": "CAWADMIN", "password": "adminc@w"}):
        status, headers, raw = raw_request(stack.url, "POST", "/api/auth/login/admin",
                                           json.dumps(creds).encode(),
                                           {"Content-Type": "application/json"},
                                           source="127.0.0.21")
        replies.append((status, headers.get("WWW-Authenticate"), json.loads(raw)))
    assert all(r == (401, "Bearer", {"detail": "Incorrect username or password"})
               for r in replies), replies


def test_token_replies_are_not_cached_and_tokens_are_consistent(stack):
    seen_jti = set()
    for _ in range(2):
        status, headers, raw = raw_request(stack.url, "POST", "/api/auth/login/admin",
                                           json.dumps(ADMIN).encode(),
                                           {"Content-Type": "application/json"})
        assert status == 200
        assert headers["Content-Type"].startswith("application/json")
        assert "no-store" in headers.get("Cache-Control", "")
        body = json.loads(raw)
        assert set(body) == {"access_token", "token_type", "expires_in"}
        head, claims = jwt_parts(body["access_token"])
        assert head.get("alg") == "HS256"
        assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
        assert claims["exp"] - claims["iat"] == body["expires_in"]
        assert abs(claims["iat"] - time.time()) < 120
        seen_jti.add(claims["jti"])
    assert len(seen_jti) == 2
    admin = admin_token(stack.url)
    code = new_otp(stack.url, admin, 1)["code"]
    status, headers, raw = raw_request(stack.url, "POST", "/api/auth/login/otp",
                                       json.dumps({"otp_code": code}).encode(),
                                       {"Content-Type": "application/json"})
    assert status == 200 and "no-store" in headers.get("Cache-Control", "")
    body = json.loads(raw)
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    head, claims = jwt_parts(body["access_token"])
    assert head["alg"] == "HS256" and claims["role"] == "otp"
    assert claims["sub"] and claims["jti"] and claims["exp"] > claims["iat"]
    assert code not in body["access_token"] and code not in json.dumps(claims)



def test_form_login_decodes_percent_escapes(stack):
    body = b"username=caw%61dmin&password=adminc%40w"
    status, _, _ = raw_request(stack.url, "POST", "/api/auth/login/admin", body,
                               {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert status == 200
