"""Access spends grouped per commit (services/auth/spend_batch.c), black box: many
visitors of several codes spending at once — codes with 1 to 40 uses, more requests
than uses on most — must get exactly min(N, k) grants per code, each granted answer a
different remaining count (every use handed out once), a 403 for each of the rest, the
codes' used counts, the usage rows and the traffic total equal to the grants; and
vap-auth's metrics must show that spends were really decided in batches of two or more
(otherwise this test would only be checking the single spend again). The same holds
when the gateway's connections to vap-auth break after a spend reached it, so that the
same spend arrives twice (rpc_proxy.py)."""
import collections
import concurrent.futures
import random
import re
import threading
import urllib.request

import pytest

from rpc_proxy import RpcProxy
from stack import free_port, own_stack, running_stack
from test_agents import admin_token, call, new_otp, otp_token, usage_rows

USES = (1, 3, 5, 8, 13, 40)
REQUESTS_PER_CODE = 30


@pytest.fixture(scope="module")
def bstack():
    port, usage_port = free_port(), free_port()
    for s in running_stack(0, {"METRICS_ADDR_AUTH": f"127.0.0.1:{port}",
                               "METRICS_ADDR_USAGE": f"127.0.0.1:{usage_port}"}):
        s.auth_metrics = f"http://127.0.0.1:{port}/metrics"
        s.usage_metrics = f"http://127.0.0.1:{usage_port}/metrics"
        yield s


def metric_values(url, *names):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()

    def value(name):
        m = re.search(r"^" + name + r" (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    return tuple(value(n) for n in names)


def batch_counters(s):
    return metric_values(s.auth_metrics, "vap_auth_spend_batches_total",
                         "vap_auth_spends_batched_total")


def live_counters(s):
    return metric_values(s.usage_metrics, "vap_usage_live_messages_total",
                         "vap_usage_live_events_total")


def spend_all_at_once(s, tokens):
    """REQUESTS_PER_CODE accesses per code, interleaved, from 64 threads at once."""
    jobs = [(i, tokens[i]) for _ in range(REQUESTS_PER_CODE) for i in range(len(tokens))]

    def access(job):
        i, token = job
        status, body = call(s.url, "POST", "/api/agents/access", {"agent_type": "hospital"},
                            token, timeout=30)
        return i, status, body

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        return list(pool.map(access, jobs))


def answers_by_code(results):
    """spend_all_at_once's results as {code index: (granted bodies, [(status, body)]
    of the rest)}."""
    by_code = collections.defaultdict(list)
    for i, status, body in results:
        by_code[i].append((status, body))
    return {i: ([b for st, b in answers if st == 200],
                [(st, b) for st, b in answers if st != 200])
            for i, answers in by_code.items()}


def test_concurrent_spends_are_batched_and_exact(bstack):
    s = bstack
    admin = admin_token(s.url)
    status, before = call(s.url, "GET", "/api/agents/traffic", token=admin)
    assert status == 200
    total_before = {r["agent_type"]: r["total_accesses"] for r in before}["hospital"]
    batches_before, batched_before = batch_counters(s)

    granted_total = 0
    otp_ids = []
    for attempt in range(3):  # a round whose requests never met in auth proves nothing
        otps = [new_otp(s.url, admin, uses) for uses in USES]
        tokens = [otp_token(s.url, o["code"]) for o in otps]
        by_code = answers_by_code(spend_all_at_once(s, tokens))
        for i, uses in enumerate(USES):
            granted, refused = by_code[i]
            assert len(granted) == min(REQUESTS_PER_CODE, uses), (uses, by_code[i])
            assert all(st == 403 and b["detail"] == "OTP has no remaining uses"
                       for st, b in refused), refused
            # Every use handed out once: the remaining counts are uses-1 .. uses-granted.
            assert sorted(b["remaining_uses"] for b in granted) == \
                list(range(uses - len(granted), uses)), (uses, granted)
            granted_total += len(granted)
        otp_ids += [o["id"] for o in otps]
        batches, batched = batch_counters(s)
        if batched - batched_before >= 2:
            break
    assert batches > batches_before, \
        f"no batch of two or more spends formed in 3 rounds ({batches}, {batched})"

    status, listed = call(s.url, "GET", "/api/otps/?limit=100", token=admin)
    assert status == 200
    used = {o["id"]: o["used_count"] for o in listed}
    max_uses = {o["id"]: o["max_uses"] for o in listed}
    for otp_id in otp_ids:
        assert used[otp_id] == min(REQUESTS_PER_CODE, max_uses[otp_id]), otp_id
        assert len(usage_rows(s.url, admin, otp_id, expect=used[otp_id])) == used[otp_id]
    status, after = call(s.url, "GET", "/api/agents/traffic", token=admin)
    assert {r["agent_type"]: r["total_accesses"] for r in after}["hospital"] == \
        total_before + granted_total


def test_one_commits_usage_events_arrive_live_in_one_message(bstack):
    """Each commit's usage events are published as one message (not one per access),
    and vap-usage receives them live, not only from its once-a-second outbox read."""
    s = bstack
    admin = admin_token(s.url)
    for attempt in range(3):
        messages_before, events_before = live_counters(s)
        otps = [new_otp(s.url, admin, 40) for _ in range(4)]
        tokens = [otp_token(s.url, o["code"]) for o in otps]
        results = spend_all_at_once(s, tokens)
        granted = sum(1 for _, status, _ in results if status == 200)
        assert granted == len(tokens) * REQUESTS_PER_CODE
        for o in otps:
            usage_rows(s.url, admin, o["id"], expect=REQUESTS_PER_CODE)
        messages, events = live_counters(s)
        # Loopback pub/sub under this load drops nothing; the outbox read would hide it.
        assert events - events_before == granted, (events - events_before, granted)
        if messages - messages_before < events - events_before:
            return
    pytest.fail(f"every usage message carried one event in 3 rounds ({messages}, {events})")


def test_resent_spends_are_granted_once(tmp_path):
    """The gateway resends a call whose connection broke (at-least-once). When the first
    copy of a spend is still queued in vap-auth, both copies land in one batch; the
    batch fails on the grant's unique key and is rerun one spend at a time: the first
    copy spends, the second finds its grant and answers with it. Whichever way each
    resend goes, every code must grant exactly min(N, k) and record as many uses."""
    rng, lock = random.Random(7), threading.Lock()

    def breaks(frame):  # a resend is never broken again (the proxy passes it on)
        with lock:
            return b"auth.access" in frame and rng.random() < 0.25

    auth_port, metrics_port = free_port(), free_port()
    proxy = RpcProxy(("127.0.0.1", auth_port), breaks)
    env = {"AUTH_RPC_URL": f"tcp://127.0.0.1:{auth_port}",
           "AUTH_RPC_URL_GATEWAY": f"tcp://127.0.0.1:{proxy.port}",
           "METRICS_ADDR_AUTH": f"127.0.0.1:{metrics_port}"}
    try:
        with own_stack(extra_env=env) as s:
            s.auth_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            admin = admin_token(s.url)
            (reruns_before,) = metric_values(s.auth_metrics, "vap_auth_spend_batch_reruns_total")
            for attempt in range(4):  # until a resend met its first copy in one batch
                otps = [new_otp(s.url, admin, uses) for uses in USES]
                tokens = [otp_token(s.url, o["code"]) for o in otps]
                by_code = answers_by_code(spend_all_at_once(s, tokens))
                status, listed = call(s.url, "GET", "/api/otps/?limit=100", token=admin)
                assert status == 200
                used = {o["id"]: o["used_count"] for o in listed}
                for i, uses in enumerate(USES):
                    granted, refused = by_code[i]
                    assert len(granted) == min(REQUESTS_PER_CODE, uses), (uses, by_code[i])
                    assert all(st == 403 for st, _ in refused), refused
                    assert used[otps[i]["id"]] == len(granted), (uses, used[otps[i]["id"]])
                    assert len(usage_rows(s.url, admin, otps[i]["id"], expect=len(granted))) \
                        == len(granted)
                (reruns,) = metric_values(s.auth_metrics, "vap_auth_spend_batch_reruns_total")
                if reruns > reruns_before:
                    break
            assert proxy.broken > 0
            assert reruns > reruns_before, \
                f"no resend met its first copy in a batch in 4 rounds ({proxy.broken} broken)"
    finally:
        proxy.close()
