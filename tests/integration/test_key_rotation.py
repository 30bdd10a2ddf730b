"""SECRET_KEY rotation with SECRET_KEY_PREVIOUS, black box through the gateway.

Codes and tokens are made under key A; the whole stack is restarted with SECRET_KEY=B and
SECRET_KEY_PREVIOUS=A: the old tokens still work, the old codes still log in and are still
listed (vap-auth re-keyed them at start), new tokens are signed with B only. Restarted
with B alone: the re-keyed codes still log in, A-signed tokens are refused. Also: a key
change without SECRET_KEY_PREVIOUS refuses old tokens and codes (the documented
behaviour), and a code made by a replica still on key A during a rolling rotation (after
the re-key ran) logs in and is listed before it is re-keyed.
"""
import hashlib
import hmac
import os
import re
import secrets
import subprocess

import pytest

import conftest
from stack import PgCluster, Stack, build_dir
from test_agents import admin_token, call, new_otp, otp_token
from test_auth_otps import b64url

KEY_A = secrets.token_hex(32)
KEY_B = secrets.token_hex(32)


@pytest.fixture
def cluster():
    c = PgCluster()
    yield c
    c.destroy()


def start(cluster, key, previous=None, **kwargs):
    env = {"SECRET_KEY": key}
    if previous:
        env["SECRET_KEY_PREVIOUS"] = previous
    s = Stack(cluster, extra_env=env, **kwargs).start()
    conftest._stacks.append(s)  # scanned for sanitizer reports at the end
    return s


def signed_with(token, key):
    signing, _, sig = token.rpartition(".")
    return hmac.compare_digest(
        b64url(hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest()), sig)


def access(base, token):
    return call(base, "POST", "/api/agents/access", {"agent_type": "realestate"}, token)


def listed_codes(base, admin):
    status, body = call(base, "GET", "/api/otps/", token=admin)
    assert status == 200, body
    return {o["id"]: o["code"] for o in body}


def login_status(base, code):
    return call(base, "POST", "/api/auth/login/otp", {"otp_code": code})[0]


def rekeyed(s):
    found = re.findall(r"otp re-key done rekeyed=(\d+)", s.log_text("auth"))
    return int(found[-1]) if found else None


def assert_no_secrets_in_logs(s, codes):
    for name in s.services:
        text = s.log_text(name)
        for secret in [KEY_A, KEY_B] + [f'"{c}"' for c in codes]:
            assert secret not in text, f"a secret ({secret[:4]}...) is in the {name} log"


def test_rotation_keeps_codes_and_tokens_then_retires_the_old_key(cluster):
    # Under key A: two live codes, one deactivated, one deleted; tokens of both kinds.
    s = start(cluster, KEY_A)
    admin_a = admin_token(s.url)
    one, two = new_otp(s.url, admin_a, 5), new_otp(s.url, admin_a, 5)
    off, gone = new_otp(s.url, admin_a, 2), new_otp(s.url, admin_a, 1)
    assert call(s.url, "PUT", f"/api/otps/{off['id']}", {"is_active": False}, admin_a)[0] == 200
    assert call(s.url, "DELETE", f"/api/otps/{gone['id']}", token=admin_a)[0] == 200
    visitor_a = otp_token(s.url, one["code"])
    assert access(s.url, visitor_a)[0] == 200
    assert signed_with(admin_a, KEY_A) and signed_with(visitor_a, KEY_A)
    s.stop()

    # Rotated: B signs, A is still accepted; vap-auth re-keyed the three stored codes.
    s = start(cluster, KEY_B, KEY_A)
    assert rekeyed(s) == 3
    assert call(s.url, "GET", "/api/agents/list", token=admin_a)[0] == 200
    codes = listed_codes(s.url, admin_a)
    assert codes == {one["id"]: one["code"], two["id"]: two["code"], off["id"]: off["code"]}
    status, body = access(s.url, visitor_a)
    assert status == 200 and body["remaining_uses"] == 3, body
    visitor_b = otp_token(s.url, two["code"])
    assert access(s.url, visitor_b)[0] == 200
    assert login_status(s.url, one["code"]) == 200
    assert login_status(s.url, off["code"]) == 403  # still inactive, still found
    admin_b = admin_token(s.url)
    fresh = new_otp(s.url, admin_b, 2)  # made under B while A is still accepted
    for token in (admin_b, visitor_b):
        assert signed_with(token, KEY_B) and not signed_with(token, KEY_A)
    assert_no_secrets_in_logs(s, [one["code"], two["code"], off["code"], fresh["code"]])
    s.stop()

    # A second start with the same keys finds nothing left to re-key.
    s = start(cluster, KEY_B, KEY_A)
    assert rekeyed(s) == 0  # the code made under B included
    s.stop()

    # B alone: B tokens work, A tokens are refused, the re-keyed codes still log in.
    s = start(cluster, KEY_B)
    assert call(s.url, "GET", "/api/otps/", token=admin_b)[0] == 200
    assert access(s.url, visitor_b)[0] == 200
    for token in (admin_a, visitor_a):
        assert call(s.url, "GET", "/api/agents/list", token=token)[0] == 401
    assert access(s.url, visitor_a)[0] == 401
    assert listed_codes(s.url, admin_b) == {**codes, fresh["id"]: fresh["code"]}
    assert login_status(s.url, fresh["code"]) == 200
    assert login_status(s.url, one["code"]) == 200
    assert access(s.url, otp_token(s.url, two["code"]))[0] == 200
    assert call(s.url, "PUT", f"/api/otps/{off['id']}", {"is_active": True}, admin_b)[0] == 200
    assert login_status(s.url, off["code"]) == 200
    assert login_status(s.url, gone["code"]) == 401
    s.stop()


def test_a_key_change_without_the_previous_key_refuses_old_tokens_and_codes(cluster):
    s = start(cluster, KEY_A)
    admin_a = admin_token(s.url)
    otp = new_otp(s.url, admin_a, 3)
    visitor_a = otp_token(s.url, otp["code"])
    s.stop()

    s = start(cluster, KEY_B)
    assert call(s.url, "GET", "/api/otps/", token=admin_a)[0] == 401
    assert access(s.url, visitor_a)[0] == 401
    assert login_status(s.url, otp["code"]) == 401
    assert listed_codes(s.url, admin_token(s.url)) == {otp["id"]: ""}  # listed, code unknown
    s.stop()

    # Recovery: give the old key back as SECRET_KEY_PREVIOUS and the code is re-keyed.
    s = start(cluster, KEY_B, KEY_A)
    assert rekeyed(s) == 1
    assert login_status(s.url, otp["code"]) == 200
    s.stop()


def test_codes_made_by_a_replica_still_on_the_old_key_work_during_the_rotation(cluster):
    new = start(cluster, KEY_B, KEY_A)
    # An auth + gateway pair not yet rotated, on the same database (a rolling rotation).
    old = start(cluster, KEY_A, services=("auth", "gateway"))
    late = new_otp(old.url, admin_token(old.url), 2)
    # Not re-keyed yet: found by its previous-key hash, listed with the previous key.
    assert login_status(new.url, late["code"]) == 200
    assert listed_codes(new.url, admin_token(new.url))[late["id"]] == late["code"]
    old.stop()
    new.stop()

    s = start(cluster, KEY_B, KEY_A)
    assert rekeyed(s) == 1
    s.stop()
    s = start(cluster, KEY_B)
    assert login_status(s.url, late["code"]) == 200
    s.stop()


@pytest.mark.parametrize("service", ["gateway", "auth"])
def test_a_short_previous_key_is_refused_at_start_without_echoing_it(service):
    env = dict(os.environ, SECRET_KEY=KEY_A, SECRET_KEY_PREVIOUS="short-secret",
               DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    r = subprocess.run([os.path.join(build_dir(), "bin", f"vap-{service}")], env=env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "SECRET_KEY_PREVIOUS: must be at least 16 characters" in r.stderr
    assert "short-secret" not in r.stderr and KEY_A not in r.stderr
