"""The internal links over mutual TLS (common/link.c): with every nng URL on tls+tcp://
and the LINK_TLS_* files set, the whole portal works as before (REST, events into
vap-usage, a spoken session over the media link), while a process whose certificate is
signed by another CA, or that speaks plain tcp://, gets nothing from the services, and
a tls+tcp:// URL without the files stops a service at start with the setting named.
The certificates come from deploy/link-certs.sh, as an operator makes them."""
import json
import os
import subprocess
import time
import urllib.request

import pytest

from stack import REPO, STARTED, PgCluster, Stack, free_port
from test_agents import admin_token, call, new_otp, otp_token
from voice_client import VoiceClient

def link_certs(d, *names):
    """deploy/link-certs.sh, as an operator runs it."""
    subprocess.run([os.path.join(REPO, "deploy", "link-certs.sh"), d, *names], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def rogue_cert(tmp_path_factory):
    other = tmp_path_factory.mktemp("other-ca")
    link_certs(str(other), "rogue")  # the same server name, another CA
    return f"{other}/rogue.pem"


@pytest.fixture(scope="module")
def tls_stack():
    cluster = PgCluster()
    s = Stack(cluster, voice_workers=1).use_link_tls()
    STARTED.append(s)
    try:
        s.start()
        s.wait_voice_workers(1, timeout=120)
        yield s
    finally:
        s.stop()
        cluster.destroy()


def readyz(url):
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_every_link_on_tls_carries_rest_events_and_voice(tls_stack):
    s = tls_stack
    for name in ("auth", "usage", "gateway", "voice1"):
        assert "internal links: mutual TLS" in s.log_text(name), name
    admin = admin_token(s.url)
    otp = new_otp(s.url, admin, 2)
    token = otp_token(s.url, otp["code"])
    status, body = call(s.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)
    assert status == 200, body
    c = VoiceClient(s.url, token, agent="hospital", mic=False)
    try:
        sid = c.wait_type("session.started", timeout=20)["session_id"]
        c.send_event(type="input_text", text="Where is the pharmacy?")
        c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final"), timeout=30)
        c.send_event(type="end")
        assert c.wait_type("session.ended", timeout=15)["reason"] == "client_ended"
    finally:
        c.close()
    # The access event reached vap-usage over the events link, the session record over
    # the worker's RPC link.
    deadline, row = time.time() + 20, None
    while time.time() < deadline and not (row and row["duration_seconds"] is not None):
        _, rows = call(s.url, "GET", "/api/agents/usage?agent_type=hospital&limit=100",
                       token=admin)
        row = next((r for r in rows if r["session_id"] == sid), None)
        time.sleep(0.2)
    assert row and row["otp_id"] == otp["id"] and row["duration_seconds"] > 0, row


def start_gateway(s, **env):
    port = free_port()
    e = dict(s.env, PORT=str(port), GW_VOICE_HEARTBEAT_URL=f"tls+tcp://127.0.0.1:{free_port()}",
             **env)
    log = open(os.path.join(s.logs, f"outsider-{port}.log"), "ab")
    proc = subprocess.Popen([f"{s.bin}/vap-gateway"], env=e, stdout=log, stderr=log)
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("outsider", ["certificate from another CA", "plain tcp"])
def test_a_process_outside_the_ca_gets_nothing_from_the_services(tls_stack, rogue_cert,
                                                                   outsider):
    s = tls_stack
    if outsider == "plain tcp":
        env = {k: s.env[k].replace("tls+tcp://", "tcp://") for k in ("AUTH_RPC_URL",
               "AUTH_EVENTS_URL", "USAGE_RPC_URL")}
    else:
        env = {"LINK_TLS_CERT_FILE": rogue_cert}
    proc, url = start_gateway(s, **env)
    try:
        deadline, status, body = time.time() + 15, None, None
        while time.time() < deadline:
            try:
                status, body = readyz(url)
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(2)  # time enough to connect, were it allowed
        status, body = readyz(url)
        assert status == 503 and body["checks"]["auth"] == "unreachable", body
        code = otp_token_status(url)
        assert code == 503, code
        # The real gateway, meanwhile, is served.
        assert readyz(s.url)[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def otp_token_status(url):
    status, _ = call(url, "POST", "/api/auth/login/otp", {"otp_code": "123456"})
    return status


def test_a_tls_url_without_the_files_stops_the_service_naming_the_setting(tls_stack):
    s = tls_stack
    env = {k: v for k, v in s.env.items() if k != "LINK_TLS_CA_FILE"}
    env["USAGE_RPC_URL"] = f"tls+tcp://127.0.0.1:{free_port()}"
    env["VAP_SERVICE_NAME"] = "usage"  # its own database role, as under the supervisor
    out = subprocess.run([f"{s.bin}/vap-usage"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "LINK_TLS_CA_FILE" in out.stderr, out.stderr[-2000:]
