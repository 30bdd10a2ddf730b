"""protocol=twilio end to end: a scripted Twilio Media Streams bridge (twilio_client.py,
the message sequence a real bridge sends) against the real gateway, auth, usage and a
vap-voice worker whose dialog engine is the local mock of the Claude API, so the test
can read exactly what the recogniser heard and what the history keeps. Covers a spoken
conversation over 8 kHz mu-law, barge-in (`clear`, and the reply truncated at the last
mark the bridge echoed), token refusals, and malformed frames that close one stream
with a clear reason while another session carries on."""
import base64
import subprocess
import time

import pytest
import websocket

from stack import running_stack
from test_voice import synth, visitor, words
from test_agents import admin_token, call
from test_voice_llm import KEY, MOCK, mock_call
from twilio_client import START, TwilioClient, from_mulaw_8k
from voice_client import rms

QUESTION = "I would like to book an appointment with a cardiologist"
OVER = "Where is the pediatrics department"


@pytest.fixture(scope="module")
def mock():
    proc = subprocess.Popen(["/usr/bin/python3", MOCK, "0", "--api-key", KEY],
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tstack(mock):
    env = {"CLAUDE_API_KEY": KEY, "CLAUDE_BASE_URL": mock, "CLAUDE_MODEL": "claude-test",
           "LLM_FIRST_TOKEN_TIMEOUT_MS": "3000", "LLM_TIMEOUT_MS": "20000"}
    yield from running_stack(1, env)


def llm_bodies(mock):
    return [r["body"] for r in mock_call(mock, "GET", "/_requests")
            if r["path"].endswith("/messages")]


def user_texts(body):
    out = []
    for m in body["messages"]:
        if m["role"] == "user":
            c = m["content"]
            out.append(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c))
    return out


def assistant_texts(body):
    out = []
    for m in body["messages"]:
        if m["role"] == "assistant":
            c = m["content"]
            out.append(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c))
    return out


def wait_greeting(c, timeout=20):
    c.wait(lambda: any(m.get("event") == "media" for _, m in c.received), timeout, "greeting")
    c.wait(lambda: c.quiet_for(0.6), timeout, "end of the greeting")


def test_spoken_conversation_over_twilio(tstack, mock):
    mock_call(mock, "DELETE", "/_requests")
    token, _ = visitor(tstack, "hospital")
    c = TwilioClient(tstack.url, token, agent="hospital")  # as Twilio connects: no query
    wait_greeting(c)
    greeting = b"".join(m for _, m in c.played)
    assert len(greeting) > 8000, "the startup message was not played"  # > 1 s
    assert rms(from_mulaw_8k(greeting)) > 300
    names = [m["mark"]["name"] for _, m in c.received if m.get("event") == "mark"]
    assert names and all(n.startswith("vap-0-") for n in names), names
    assert [n for _, n in c.marks_echoed] == names  # every mark came back, in order

    t_end = c.speak(synth(QUESTION))
    c.wait(lambda: len(c.media_after(t_end)) > 25, 20, "the agent's answer")
    c.wait(lambda: c.quiet_for(0.6), 30, "end of the answer")
    heard = user_texts(llm_bodies(mock)[-1])[-1].lower()
    assert {"appointment", "cardiologist"} & set(words(heard)), heard
    # The answer is everything after the greeting's last mark (it may start before the
    # caller's trailing silence is over).
    msgs = [m for _, m in c.received]
    after = max(i for i, m in enumerate(msgs) if m.get("event") == "mark" and
                m["mark"]["name"].startswith("vap-0-"))
    media = [base64.b64decode(m["media"]["payload"]) for m in msgs[after:]
             if m.get("event") == "media"]
    answer = b"".join(media)
    assert all(len(m) == 160 for m in media)  # 20 ms frames
    assert len(answer) / 8000 > 1.5 and rms(from_mulaw_8k(answer)) > 300
    # Marks carry the position in the reply: the turn's last one is its whole length.
    last = [m["mark"]["name"] for m in msgs[after + 1:] if m.get("event") == "mark"]
    assert last and all(n.startswith("vap-1-") for n in last)
    assert int(last[-1].split("-")[2]) == len(answer) // 8
    c.stop()
    assert c.wait_closed(10)[0] == 1000
    c.close()


def test_barge_in_clears_and_truncates_at_the_last_mark(tstack, mock):
    token, _ = visitor(tstack, "hospital")
    c = TwilioClient(tstack.url, token, agent="hospital", query=True)  # ?protocol=twilio
    wait_greeting(c)
    mock_call(mock, "POST", "/_fault", {"mode": "SLOW", "count": 1})
    t_end = c.speak(synth(QUESTION), tail_ms=200)
    # Let about two seconds of the long answer play, then talk over it.
    c.wait(lambda: sum(1 for t, _ in c.played if t > t_end) >= 100, 30, "2 s of the answer")
    mock_call(mock, "DELETE", "/_requests")
    t_over = time.monotonic()
    c.speak(synth(OVER), tail_ms=1500)
    c.wait(lambda: c.clears, 10, "clear")
    assert c.clears[0] - t_over < 2.0
    with c.cond:
        before = [n for t, n in c.marks_echoed if t < c.clears[0] and n.startswith("vap-1-")]
    last_ms = int(before[-1].split("-")[2])
    c.wait(lambda: llm_bodies(mock), 20, "the next turn's LLM request")
    body = llm_bodies(mock)[-1]
    kept = assistant_texts(body)[-1]
    assert kept.startswith("You said:"), kept
    # The long answer is ~60 words; what is kept is what was heard by the last mark.
    n = len(kept.split())
    assert n < 40, kept
    assert last_ms / 1000 * 1.0 - 3 <= n <= last_ms / 1000 * 4.5 + 3, (last_ms, kept)
    print(f"barge-in: clear {c.clears[0] - t_over:.2f}s after onset, last mark {last_ms} ms, "
          f"kept {n} words: {kept!r}")
    # The visitor's words over the answer are the new turn, after the truncated answer.
    assert body["messages"][-1]["role"] == "user" and words(user_texts(body)[-1])
    c.close()


@pytest.mark.parametrize("how", ["none", "bad"])
def test_missing_or_bad_token_is_refused(tstack, how):
    token, _ = visitor(tstack, "hospital")
    c = TwilioClient(tstack.url, None if how == "none" else token[:-4] + "AAAA", agent="hospital")
    code, reason = c.wait_closed(10)
    assert code == 4401 and "token" in reason.lower(), (code, reason)
    c.close()


def test_token_in_the_url_works_too(tstack):
    token, _ = visitor(tstack, "hospital")
    c = TwilioClient(tstack.url, None, agent="hospital", url_token=token)
    wait_greeting(c)
    c.close()


MALFORMED = {
    "bad_base64": ({"event": "media", "media": {"payload": "!!not base64!!"}}, 1008, "base64"),
    "oversize": ({"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 4000)
                                              .decode()}}, 1009, "120 ms"),
    "not_json": ("{event: media", 1008, "JSON"),
    "binary": (b"\x00\x01\x02", 1003, "text"),
    "second_start": ({"event": "start", "start": dict(START, streamSid="MZ9")}, 1008, "start"),
}


def test_malformed_frames_close_one_stream_only(tstack):
    other_token, _ = visitor(tstack, "hospital")
    other = TwilioClient(tstack.url, other_token, agent="hospital")
    for case in sorted(MALFORMED):
        token, _ = visitor(tstack, "hospital")
        c = TwilioClient(tstack.url, token, agent="hospital")
        c.wait(lambda: any(m.get("event") == "media" for _, m in c.received), 20, "greeting")
        msg, code, words_in_reason = MALFORMED[case]
        if isinstance(msg, bytes):
            c.send_raw(msg, binary=True)
        elif isinstance(msg, str):
            c.send_raw(msg)
        else:
            c.send(dict(msg, streamSid=c.sid))
        got = c.wait_closed(10)
        assert got[0] == code and words_in_reason.lower() in got[1].lower(), (case, got)
        c.close()
    # The other call went on through all of it: it still hears and answers.
    assert not other.closed.is_set()
    wait_greeting(other)
    t_end = other.speak(synth(QUESTION), tail_ms=800)
    other.wait(lambda: len(other.media_after(t_end)) > 10, 20, "the other call's answer")
    other.close()


def test_media_before_start_and_wrong_format_are_refused(tstack):
    token, _ = visitor(tstack, "hospital")
    c = TwilioClient(tstack.url, token, agent="hospital", start=False)
    c.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    c.send({"event": "media", "streamSid": "MZ1", "media": {"payload": "/w=="}})
    code, reason = c.wait_closed(10)
    assert code == 1008 and "before start" in reason, (code, reason)
    c.close()
    c = TwilioClient(tstack.url, token, agent="hospital",
                     media_format={"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})
    code, reason = c.wait_closed(10)
    assert code == 1008 and "mulaw" in reason, (code, reason)
    c.close()
    # Neither refusal spent the grant: a proper call still starts.
    c = TwilioClient(tstack.url, token, agent="hospital")
    wait_greeting(c)
    c.close()


def test_a_bridge_that_never_starts_is_closed(tstack):
    """Until `start` a stream is not authenticated: it may not hold a thread for long."""
    c = TwilioClient(tstack.url, None, agent="hospital", start=False)
    c.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    t0 = time.monotonic()
    code, reason = c.wait_closed(20)
    assert code == 1008 and "no start" in reason, (code, reason)
    assert 9 < time.monotonic() - t0 < 15
    c.close()


def test_usage_records_the_twilio_session(tstack):
    token, otp = visitor(tstack, "hospital")
    c = TwilioClient(tstack.url, token, agent="hospital")
    wait_greeting(c)
    c.stop()
    assert c.wait_closed(10)[0] == 1000
    c.close()
    admin = admin_token(tstack.url)
    deadline = time.time() + 10
    row = None
    while time.time() < deadline:
        _, rows = call(tstack.url, "GET", "/api/agents/usage?agent_type=hospital&limit=1000",
                       token=admin)
        row = next((r for r in rows if r["otp_id"] == otp["id"]), None)
        if row and row["duration_seconds"] is not None:
            break
        time.sleep(0.2)
    assert row and row["duration_seconds"] > 0 and row["session_id"], row


def test_a_bad_frame_with_more_right_behind_it_still_gets_its_close_reason(tstack):
    # A bad frame and more frames arriving in the same read: the frame after the bad one
    # finds the stream closing and ends the read loop at once, often before the writer
    # thread has sent the queued close frame. The writer used to stop without sending
    # it, so the client saw the socket go with no code or reason (CI saw it once in
    # test_malformed_frames_close_one_stream_only). Several tries: it is a race.
    for attempt in range(5):
        token, _ = visitor(tstack, "hospital")
        c = TwilioClient(tstack.url, token, agent="hospital")
        c.wait(lambda: any(m.get("event") == "media" for _, m in c.received), 20, "greeting")
        bad = websocket.ABNF.create_frame(b"\x00\x01\x02", websocket.ABNF.OPCODE_BINARY)
        more = websocket.ABNF.create_frame('{"event": "mark"}', websocket.ABNF.OPCODE_TEXT)
        with c.send_lock:
            c.ws.sock.sendall(bad.format() + more.format() * 3)
        got = c.wait_closed(10)
        assert got[0] == 1003 and "text" in (got[1] or "").lower(), (attempt, got)
        c.close()
