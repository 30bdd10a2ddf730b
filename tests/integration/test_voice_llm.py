"""Voice sessions with the LLM engines: a worker configured with CLAUDE_API_KEY (or
LLM_BASE_URL) talks to a local mock speaking the real streaming wire formats
(tests/mock_llm/mock_llm.py). The reply is streamed, spoken and carries the agent's
system prompt and the session's history; a failing LLM (500, a hang, a stall after the
headers, bytes trickling in, a stream closed midway, broken JSON) gives an `error` event
and a spoken apology within the deadlines, the session goes on, and a hung request
holds up no other session."""
import json
import os
import subprocess
import time
import urllib.request

import pytest

from stack import REPO, running_stack
from test_voice import visitor
from voice_client import VoiceClient

MOCK = os.path.join(REPO, "tests", "mock_llm", "mock_llm.py")
KEY = "sk-test-" + "x" * 24


@pytest.fixture(scope="module")
def mock():
    proc = subprocess.Popen(["/usr/bin/python3", MOCK, "0", "--api-key", KEY],
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def mock_call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module", params=["claude", "openai"])
def llm_stack(request, mock):
    env = {"LLM_FIRST_TOKEN_TIMEOUT_MS": "1500", "LLM_TIMEOUT_MS": "4000"}
    if request.param == "claude":
        env.update(CLAUDE_API_KEY=KEY, CLAUDE_BASE_URL=mock, CLAUDE_MODEL="claude-test")
    else:
        env.update(LLM_BASE_URL=mock + "/v1", LLM_API_KEY=KEY, LLM_MODEL="gpt-test")
    for s in running_stack(1, env):
        s.engine = request.param
        yield s


def final_text(c, turn, timeout=15):
    return c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                        e.get("turn_id") == turn, timeout)["text"]


def test_reply_streams_from_the_llm_with_prompt_and_history(llm_stack, mock):
    mock_call(mock, "DELETE", "/_requests")
    token, _ = visitor(llm_stack, "hospital")
    c = VoiceClient(llm_stack.url, token, agent="hospital")
    c.wait_type("session.started")
    c.wait_type("agent.audio.end", turn_id=0)  # the greeting was heard in full
    c.send_event(type="input_text", text="Where is the cardiology department")
    text = final_text(c, 1)
    assert "cardiology" in text.lower(), text
    pieces = [e for e in c.of_type("agent.text") if e["turn_id"] == 1 and not e["final"]]
    assert len(pieces) > 1, "the reply was not streamed"
    c.wait_type("agent.audio.end", turn_id=1)
    c.send_event(type="input_text", text="And who is the doctor there")
    final_text(c, 2)
    reqs = [r for r in mock_call(mock, "GET", "/_requests")
            if r["path"].endswith(("/messages", "/completions"))]
    last = reqs[-1]["body"]
    blob = json.dumps(last)
    assert "hospital receptionist" in blob.lower()          # the agent's system prompt
    assert "Where is the cardiology department" in blob     # the history
    assert "Good day, you've reached the hospital" in blob  # the greeting, as heard
    assert last["stream"] is True
    headers = {k.lower(): v for k, v in reqs[-1]["headers"].items()}
    if llm_stack.engine == "claude":
        assert headers["x-api-key"] == KEY and "anthropic-version" in headers
        assert last["model"] == "claude-test"
    else:
        assert headers["authorization"] == "Bearer " + KEY
        assert last["model"] == "gpt-test"
    c.send_event(type="end")
    ended = c.wait_type("session.ended")
    assert ended["totals"]["llm_tokens_out"] > 0 and ended["totals"]["llm_tokens_in"] > 0
    c.close()


@pytest.mark.parametrize("fault", ["500", "HANG", "STALL", "TRICKLE", "CLOSE", "MALFORMED"])
def test_llm_failure_is_an_error_and_an_apology_not_a_dead_session(llm_stack, mock, fault):
    token, _ = visitor(llm_stack, "realestate")
    c = VoiceClient(llm_stack.url, token, agent="realestate")
    c.wait_type("session.started")
    mock_call(mock, "POST", "/_fault", {"mode": fault, "count": 2})
    t0 = time.monotonic()
    c.send_event(type="input_text", text="Do you have a house in Portland")
    err = c.wait_type("error", timeout=15)
    assert err["code"] in ("llm_error", "llm_timeout"), err
    assert KEY not in json.dumps(err)
    text = final_text(c, 1)
    assert "sorry" in text.lower(), text
    assert time.monotonic() - t0 < 10
    c.wait_type("agent.audio.end", turn_id=1, timeout=15)
    mock_call(mock, "POST", "/_fault", {"mode": "none", "count": 0})
    c.send_event(type="input_text", text="Do you have a flat in Springfield")
    assert "springfield" in final_text(c, 2).lower()
    c.close()


def test_a_hung_llm_holds_up_only_its_own_session(llm_stack, mock):
    """One session's LLM request hangs; another session's reply streams meanwhile."""
    token_a, _ = visitor(llm_stack, "realestate")
    token_b, _ = visitor(llm_stack, "realestate")
    a = VoiceClient(llm_stack.url, token_a, agent="realestate")
    b = VoiceClient(llm_stack.url, token_b, agent="realestate")
    a.wait_type("session.started")
    b.wait_type("session.started")
    a.send_event(type="input_text", text="FAULT_HANG tell me about houses")
    time.sleep(0.3)
    t0 = time.monotonic()
    b.send_event(type="input_text", text="Do you have a flat in Springfield")
    assert "springfield" in final_text(b, 1).lower()
    assert time.monotonic() - t0 < 3, "the other session waited on the hung request"
    assert not a.of_type("error"), "the hung request ended before the other reply"
    err = a.wait_type("error", timeout=15)
    assert err["code"] in ("llm_error", "llm_timeout"), err
    assert "sorry" in final_text(a, 1).lower()
    a.close()
    b.close()


def test_greeting_cut_short_is_not_in_the_history(llm_stack, mock):
    """Typing over the greeting interrupts it; the LLM sees only what was heard."""
    mock_call(mock, "DELETE", "/_requests")
    token, _ = visitor(llm_stack, "hospital")
    c = VoiceClient(llm_stack.url, token, agent="hospital")
    c.wait_type("agent.audio.start", turn_id=0)
    c.send_event(type="input_text", text="Sorry to interrupt, where is pediatrics")
    inter = c.wait_type("agent.interrupted", turn_id=0)
    final_text(c, 1)
    body = json.dumps([r for r in mock_call(mock, "GET", "/_requests")
                       if r["path"].endswith(("/messages", "/completions"))][-1]["body"])
    assert "How can I help you today" not in body, (inter, body)
    c.close()
