"""Every service's Prometheus metrics, as an operator scrapes them: vap-auth, vap-usage
and a vap-voice worker serve /metrics on their METRICS_ADDR_<SERVICE> address, the
gateway adds the shared series to its own /metrics. After real traffic (logins, an
access, a voice session with a typed turn) the series show it: RPC latency by method on
both ends, database pool use, voice sessions, per-stage voice latency."""
import re
import urllib.request

import pytest

from stack import free_port, running_stack
from test_agents import admin_token, call
from test_voice import open_session


@pytest.fixture(scope="module")
def mstack():
    ports = {name: free_port() for name in ("auth", "usage", "voice1")}
    env = {f"METRICS_ADDR_{name.upper()}": f"127.0.0.1:{port}" for name, port in ports.items()}
    for s in running_stack(1, env):
        s.metrics_urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
        s.metrics_urls["gateway"] = s.url + "/metrics"
        yield s


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def value(text, series):
    """The value of one series line (name{labels} exactly), or None."""
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_each_service_serves_its_metrics_after_real_traffic(mstack):
    s = mstack
    admin = admin_token(s.url)
    assert call(s.url, "GET", "/api/agents/usage?limit=5", token=admin)[0] == 200
    c, started, _, _ = open_session(s, "hospital")
    c.send_event(type="input_text", text="What are the visiting hours?")
    c.wait_event(lambda e: e["type"] == "metrics" and e.get("turn_id") == 1, timeout=20)
    c.send_event(type="end")
    c.wait_type("session.ended")
    c.close()

    auth = scrape(s.metrics_urls["auth"])
    assert value(auth, 'vap_rpc_server_seconds_count{method="auth.login_admin"}') >= 1, auth
    assert value(auth, 'vap_rpc_server_seconds_count{method="auth.access"}') >= 1
    assert value(auth, 'vap_rpc_server_errors_total{method="auth.access"}') == 0
    assert re.search(r'^vap_db_pool_open\{pool="[^"]+"\} [1-9]', auth, re.M), auth
    assert re.search(r'^vap_db_acquire_seconds_count\{pool="[^"]+"\} [1-9]', auth, re.M)

    usage = scrape(s.metrics_urls["usage"])
    assert value(usage, 'vap_rpc_server_seconds_count{method="usage.list"}') >= 1, usage
    assert value(usage, 'vap_rpc_server_seconds_count{method="usage.session"}') >= 1, usage

    voice = scrape(s.metrics_urls["voice1"])
    assert value(voice, "vap_voice_sessions_active") == 0
    for stage in ("end_of_turn", "stt", "llm_first_token", "tts_first_audio", "voice_to_voice"):
        assert value(voice, f'vap_voice_stage_seconds_count{{stage="{stage}"}}') >= 1, voice
    assert value(voice, 'vap_voice_sessions_ended_total{reason="client_ended"}') >= 1, voice
    assert value(voice, 'vap_rpc_client_seconds_count{method="usage.session"}') >= 1

    gw = scrape(s.metrics_urls["gateway"])
    assert value(gw, 'vap_rpc_client_seconds_count{method="auth.grant_claim"}') >= 1, gw
    assert re.search(r'^vap_http_requests_total\{route="/api/agents/usage"', gw, re.M)
    # One HELP/TYPE per name, even with the shared series appended.
    types = re.findall(r"^# TYPE (\S+) ", gw, re.M)
    assert len(types) == len(set(types)), [t for t in types if types.count(t) > 1]


def test_metrics_endpoint_serves_only_metrics(mstack):
    url = mstack.metrics_urls["auth"].replace("/metrics", "/")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=5)
    assert e.value.code == 404
