"""Voice sessions end to end: the real gateway, auth, usage and two vap-voice workers,
driven over the native WebSocket protocol with real speech synthesised by flite and
streamed in real time as PCM16 and as Opus. Checks transcripts, replies, the reply
audio (decodes, has speech, duration fits the text), isolation, barge-in, refusals,
placement across workers, worker loss and drain, resume, and the usage records."""
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest
import websocket

from stack import own_stack, running_stack
from test_agents import admin_token, call, new_otp, otp_token
from voice_client import VoiceClient, read_wav_16k, rms, silence


def synth(text, voice="kal16"):
    """16 kHz PCM of text spoken by a flite voice (what pocketsphinx understands)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.wav")
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", path], check=True)
        return read_wav_16k(path)


def words(text):
    return re.findall(r"[a-z']+", text.lower())


def wer(ref, hyp):
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


@pytest.fixture(scope="module")
def vstack():
    # 16 (the default): a test's closed sessions wait 30 s for a resume and hold their
    # places meanwhile, and later tests must still find room
    yield from running_stack(2, {"VOICE_RESUME_WINDOW_MS": "30000", "VOICE_CAPACITY": "16"})


def visitor(s, agent="hospital", uses=5):
    """An OTP token with one access grant for agent."""
    admin = admin_token(s.url)
    otp = new_otp(s.url, admin, uses)
    token = otp_token(s.url, otp["code"])
    status, body = call(s.url, "POST", "/api/agents/access", {"agent_type": agent}, token)
    assert status == 200, body
    return token, otp


def open_session(s, agent="hospital", **kw):
    token, otp = visitor(s, agent)
    c = VoiceClient(s.url, token, agent=agent, **kw)
    started = c.wait_type("session.started")
    return c, started, token, otp


def wait_greeting_done(c, timeout=20):
    c.wait_type("agent.audio.end", turn_id=0, timeout=timeout)


# ---- refusals ----------------------------------------------------------------------

def test_refusals_close_with_codes_and_reasons(vstack):
    admin = admin_token(vstack.url)
    otp = new_otp(vstack.url, admin, 1)
    token = otp_token(vstack.url, otp["code"])
    cases = [
        (None, "hospital", 4401),
        ("not.a.token", "hospital", 4401),
        (token, "nosuchagent", 4404),
        (token, "hospital", 4403),  # no access grant yet
    ]
    for tok, agent, code in cases:
        c = VoiceClient(vstack.url, tok, agent=agent)
        got, reason = c.wait_closed()
        assert got == code, (agent, got, reason)
        assert reason
        c.close()
    # The query-string token works like the header (browsers cannot set headers).
    status, _ = call(vstack.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)
    assert status == 200
    c = VoiceClient(vstack.url, token, agent="hospital", header_token=False)
    c.wait_type("session.started")
    c.send_event(type="end")
    c.wait_type("session.ended")
    c.close()
    # One grant opens one session only.
    c = VoiceClient(vstack.url, token, agent="hospital")
    assert c.wait_closed()[0] == 4403
    # A plain GET is told to upgrade.
    status, body = call(vstack.url, "GET", "/api/voice-agents/stream?agent_type=hospital")
    assert status == 426


def test_bad_codec_is_refused_and_the_grant_is_kept(vstack):
    token, _ = visitor(vstack)
    c = VoiceClient(vstack.url, token, codec="mp3")
    assert c.wait_closed()[0] == 1008
    c = VoiceClient(vstack.url, token)  # the grant was not consumed by the refusal
    c.wait_type("session.started")
    c.close()


def test_a_too_large_frame_with_more_behind_it_gets_its_close_code_and_reason(vstack):
    # The frames after the bad one are read and dropped until the client answers our
    # close: closing with them unread would make the kernel reset the connection, and
    # a reset can destroy our close frame before the client reads it.
    for attempt in range(3):
        c, _, _, _ = open_session(vstack, mic=False)
        big = websocket.ABNF.create_frame(b"\x00" * (70 * 1024), websocket.ABNF.OPCODE_BINARY)
        more = websocket.ABNF.create_frame(b"\x00" * 640, websocket.ABNF.OPCODE_BINARY)
        c.ws.sock.sendall(big.format() + more.format() * 5)
        code, reason = c.wait_closed(10)
        assert code == 1009 and "64 KiB" in (reason or ""), (attempt, code, reason)
        c.close()


def test_a_client_that_never_answers_our_close_is_cut_off(vstack):
    # It keeps sending and never sends its close: after a short drain (2 s) the gateway
    # drops the connection instead of reading it forever.
    token, _ = visitor(vstack)
    ws = websocket.create_connection(
        vstack.url.replace("http://", "ws://")
        + "/api/voice-agents/stream?agent_type=hospital&codec=pcm16&sample_rate=16000",
        header=[f"Authorization: Bearer {token}"], timeout=10)
    ws.send_binary(b"\x00" * (70 * 1024))  # too large: the gateway closes with 1009
    sent_at = time.monotonic()
    cut_after = None
    while time.monotonic() - sent_at < 12:
        try:
            ws.sock.sendall(websocket.ABNF.create_frame(
                b"\x00" * 640, websocket.ABNF.OPCODE_BINARY).format())
        except OSError:
            cut_after = time.monotonic() - sent_at
            break
        time.sleep(0.02)
    ws.sock.close()
    assert cut_after is not None, "still reading a client that ignored our close after 12 s"
    assert 1.5 <= cut_after <= 8, cut_after


# ---- a conversation ------------------------------------------------------------------

def test_greeting_then_typed_turn_gets_text_and_audio(vstack):
    c, started, _, _ = open_session(vstack, "hospital")
    assert started["agent_type"] == "hospital"
    assert started["audio"] == {"codec": "pcm16", "sample_rate": 16000, "frame_ms": 20}
    greet = c.wait_type("agent.text", turn_id=0)
    assert "hospital" in greet["text"].lower()
    wait_greeting_done(c)
    greeting_audio = c.audio_pcm()
    secs = len(greeting_audio) / 32000
    n_words = len(words(greet["text"]))
    assert 0.2 * n_words < secs < 0.9 * n_words, (secs, n_words)
    assert rms(greeting_audio) > 300

    t0 = time.monotonic()
    c.send_event(type="input_text", text="My child has a fever, which department should I go to?")
    final = c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                         e.get("turn_id") == 1)
    assert "pediatric" in final["text"].lower(), final
    c.wait_type("agent.audio.end", turn_id=1)
    reply = c.audio_pcm(since=t0)
    assert rms(reply) > 300
    assert 0.15 * len(words(final["text"])) < len(reply) / 32000 < 1.0 * len(words(final["text"]))
    c.send_event(type="end")
    ended = c.wait_type("session.ended")
    assert ended["reason"] == "client_ended"
    assert ended["totals"]["turns"] == 1
    assert ended["totals"]["audio_out_seconds"] > 1.0
    assert c.wait_closed()[0] == 1000


@pytest.mark.parametrize("codec,rate", [("pcm16", 16000), ("opus", 48000)])
def test_spoken_question_is_transcribed_and_answered(vstack, codec, rate):
    question = "Is Doctor Patel available on Monday morning"
    c, _, _, _ = open_session(vstack, "hospital", codec=codec, sample_rate=rate)
    wait_greeting_done(c)
    t_speech = c.speak(synth(question), tail_ms=2500)
    partial = c.of_type("transcript.partial")
    final = c.wait_type("transcript.final", timeout=10)
    assert wer(question, final["text"]) <= 0.3, final["text"]
    assert partial, "no partial transcript while speaking"
    reply = c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                         e.get("turn_id") == final["turn_id"], timeout=15)
    assert re.search(r"patel", reply["text"].lower()) and "monday" in reply["text"].lower(), reply
    metrics = c.wait_type("metrics", turn_id=final["turn_id"])
    assert metrics["voice_to_voice_ms"] > 0
    c.wait_type("agent.audio.end", turn_id=final["turn_id"], timeout=20)
    audio = c.audio_pcm(since=t_speech)
    assert rms(audio) > 300
    assert len(audio) / 32000 > 0.15 * len(words(reply["text"]))
    c.close()


def test_two_sessions_of_different_agents_stay_isolated(vstack):
    a, sa, _, _ = open_session(vstack, "hospital")
    b, sb, _, _ = open_session(vstack, "realestate")
    assert sa["session_id"] != sb["session_id"]
    a.send_event(type="input_text", text="I need a doctor for my knee")
    b.send_event(type="input_text", text="Do you have a three bedroom house in Springfield?")
    ra = a.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                      e["turn_id"] == 1)
    rb = b.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                      e["turn_id"] == 1)
    assert re.search(r"ortho|garcia", ra["text"].lower()), ra
    assert "maple" in rb["text"].lower() or "springfield" in rb["text"].lower(), rb
    # Nothing of one conversation reaches the other.
    assert not any("maple" in e.get("text", "").lower() for e in a.of_type("agent.text"))
    assert not any("ortho" in e.get("text", "").lower() for e in b.of_type("agent.text"))
    a.close()
    b.close()


def test_speaking_over_the_agent_interrupts_it(vstack):
    c, _, _, _ = open_session(vstack, "realestate")
    c.wait_type("agent.audio.start", turn_id=0)
    time.sleep(1.0)  # let some of the greeting play
    c.speak(synth("Stop, I want a two bedroom apartment to rent"), tail_ms=2000)
    inter = c.wait_type("agent.interrupted", timeout=5)
    assert inter["turn_id"] == 0
    assert 500 <= inter["played_ms"] < 6000
    final = c.wait_type("transcript.final", timeout=10)
    assert "bedroom" in final["text"] or "apartment" in final["text"], final
    c.close()


def test_a_short_noise_over_the_agent_does_not_interrupt(vstack):
    import random
    c, _, _, _ = open_session(vstack, "realestate")
    c.wait_type("agent.audio.start", turn_id=0)
    time.sleep(0.5)
    rnd = random.Random(7)
    click = b"".join(int(rnd.gauss(0, 6000)).to_bytes(2, "little", signed=True)
                     for _ in range(16000 * 120 // 1000))
    c.send_frames(c.frames_of(click + silence(1500)))
    c.wait_type("agent.audio.end", turn_id=0, timeout=20)
    assert not c.of_type("agent.interrupted")
    c.close()


# ---- placement, loss, drain, resume, usage ------------------------------------------

def worker_of(session_id):
    return session_id.rsplit(".", 1)[0]


def test_sessions_are_spread_over_both_workers(vstack):
    clients = [open_session(vstack, "hospital") for _ in range(4)]
    workers = {worker_of(started["session_id"]) for _, started, _, _ in clients}
    assert len(workers) == 2, workers
    for c, _, _, _ in clients:
        c.close()


def test_resume_after_a_dropped_socket_continues_the_conversation(vstack):
    c, started, token, _ = open_session(vstack, "hospital")
    c.send_event(type="input_text", text="I have a rash on my skin")
    c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and e["turn_id"] == 1)
    c.ws.sock.close()  # dropped, not ended
    time.sleep(0.5)
    r = VoiceClient(vstack.url, token, agent="hospital", resume=started["session_id"])
    again = r.wait_type("session.started")
    assert again["session_id"] == started["session_id"] and again["resumed"] is True
    r.send_event(type="input_text", text="Which floor is that on?")
    reply = r.wait_event(lambda e: e["type"] == "agent.text" and e.get("final"), timeout=15)
    assert "4" in reply["text"] or "four" in reply["text"].lower(), reply
    # Another token cannot take the session over.
    other, _ = visitor(vstack)
    x = VoiceClient(vstack.url, other, agent="hospital", resume=started["session_id"])
    assert x.wait_closed()[0] == 4404
    r.close()


def test_session_totals_reach_usage_and_traffic(vstack):
    admin = admin_token(vstack.url)
    c, started, _, otp = open_session(vstack, "hospital")
    c.send_event(type="input_text", text="What are the visiting hours?")
    c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and e["turn_id"] == 1)
    c.send_event(type="end")
    c.wait_type("session.ended")
    deadline = time.time() + 10
    row = None
    while time.time() < deadline:
        _, rows = call(vstack.url, "GET", "/api/agents/usage?agent_type=hospital&limit=1000",
                       token=admin)
        row = next((r for r in rows if r["session_id"] == started["session_id"]), None)
        if row and row["duration_seconds"] is not None:
            break
        time.sleep(0.2)
    assert row and row["otp_id"] == otp["id"] and row["duration_seconds"] > 0, row
    _, traffic = call(vstack.url, "GET", "/api/agents/traffic", token=admin)
    hosp = next(t for t in traffic if t["agent_type"] == "hospital")
    assert hosp["total_sessions"] >= 1 and hosp["total_session_seconds"] > 0


def test_killed_worker_tells_its_clients_and_new_sessions_go_elsewhere(vstack):
    c, started, _, _ = open_session(vstack, "hospital")
    victim = worker_of(started["session_id"])
    name = None
    for n in ("voice1", "voice2"):
        if victim.endswith(f"-{vstack.pid(n)}"):
            name = n
    assert name, victim
    t0 = time.monotonic()
    vstack.kill(name)
    err = c.wait_type("error", timeout=5)
    assert err["code"] == "worker_lost"
    assert c.wait_type("session.ended", timeout=5)["reason"] == "worker_lost"
    assert time.monotonic() - t0 < 2.0
    d, s2, _, _ = open_session(vstack, "hospital")
    assert worker_of(s2["session_id"]) != victim
    d.close()
    vstack.wait_voice_workers(2, timeout=120)  # the supervisor restarted it; it rejoined


def test_draining_worker_finishes_sessions_and_takes_no_new_ones():
    with own_stack(voice_workers=2) as s:
        c, started, _, _ = open_session(s, "hospital")
        victim = worker_of(started["session_id"])
        name = next(n for n in ("voice1", "voice2") if victim.endswith(f"-{s.pid(n)}"))
        s.kill(name, signal.SIGTERM)
        time.sleep(1.5)  # its next heartbeat says draining
        for _ in range(3):
            d, sd, _, _ = open_session(s, "hospital")
            assert worker_of(sd["session_id"]) != victim
            d.close()
        c.send_event(type="input_text", text="Hello, are you still there?")
        c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                     e["turn_id"] == 1, timeout=15)
        c.send_event(type="end")
        assert c.wait_type("session.ended")["reason"] == "client_ended"


def test_a_second_sigterm_to_the_supervisor_stops_a_draining_worker_now():
    """An operator's second SIGTERM (or Ctrl-C) to vap-supervisor: the first lets a voice
    worker drain, waiting for a dropped session that may still be resumed; the second is
    passed on and the worker stops at once -- cleanly, ending the session and exiting 0,
    rather than being SIGKILLed at the supervisor's 20 s stop timeout."""
    with own_stack(voice_workers=1) as s:
        c, started, _, _ = open_session(s, "hospital")
        c.ws.sock.close()  # dropped, resumable for VOICE_RESUME_WINDOW_MS (30 s)
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(3)
        assert s.proc.poll() is None, "the supervisor stopped without waiting for the drain"
        assert "draining sessions=1" in s.log_text("voice1")
        second = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(timeout=30)
        took = time.monotonic() - second
        with open(os.path.join(s.dir, "supervisor.log")) as f:
            sup = f.read()
        assert "stopping now: signal forwarded" in sup
        assert re.search(r'"child":"voice1","pid":\d+,"status":"exit 0"', sup), sup[-2000:]
        voice = s.log_text("voice1")
        assert f"session ended id={started['session_id']}" in voice
        assert "vap-voice stopped" in voice
        assert took < 15, f"the worker took {took:.1f} s to stop after the second SIGTERM"


@pytest.mark.parametrize("worker_id,stop", [(None, signal.SIGKILL),
                                             ("voice-pod-0", signal.SIGTERM)])
def test_session_records_survive_usage_down_and_the_worker_stopped(worker_id, stop):
    """vap-usage is frozen (its RPCs time out) while a session starts and ends, and the
    worker stops before it could deliver the records: the restarted worker takes over
    its spool and the records arrive once vap-usage is back. Killed (SIGKILL), with a
    new worker id: another worker's spool is adopted. Stopped (SIGTERM), with a fixed
    worker id (a Kubernetes pod restarting its container): the new process reopens the
    same spool and must take its records over, not truncate them; and the stopping
    worker, whose delivery already failed, must not wait the 5 s it gives a reachable
    vap-usage to take the queue (the records are in the spool)."""
    env = {"VOICE_WORKER_ID": worker_id} if worker_id else {}
    with own_stack(voice_workers=1, extra_env=env) as s:
        admin = admin_token(s.url)
        c, started, _, _ = open_session(s, "hospital")
        old_pid = s.pid("voice1")
        os.kill(s.pid("usage"), signal.SIGSTOP)
        try:
            c.send_event(type="input_text", text="What are the visiting hours?")
            c.wait_event(lambda e: e["type"] == "agent.text" and e.get("final") and
                         e["turn_id"] == 1)
            c.send_event(type="end")
            c.wait_type("session.ended")
            time.sleep(0.5 if stop == signal.SIGKILL else 4)  # 4 s: a delivery timed out
            t0 = time.monotonic()
            s.kill("voice1", stop)
            if stop == signal.SIGTERM:
                exited = f'"child":"voice1","pid":{old_pid},"status":"exit 0"'
                while exited not in open(os.path.join(s.dir, "supervisor.log")).read():
                    assert time.monotonic() - t0 < 10, "the worker did not stop"
                    time.sleep(0.05)
                took = time.monotonic() - t0
        finally:
            os.kill(s.pid("usage"), signal.SIGCONT)
        if stop == signal.SIGTERM:
            assert re.search(r"exiting with [1-9]\d* session records not delivered",
                             s.log_text("voice1"))
            # 5 s or more when it waited for vap-usage; the drain takes well under 1 s
            assert took < 3.5, f"the worker took {took:.1f} s to stop"
        s.wait_voice_workers(1, timeout=120)
        deadline = time.time() + 20
        row = None
        while time.time() < deadline:
            _, traffic = call(s.url, "GET", "/api/agents/usage?agent_type=hospital", token=admin)
            row = next((r for r in traffic if r["session_id"] == started["session_id"]), None)
            if row and row["duration_seconds"] is not None:
                break
            time.sleep(0.3)
        assert row and row["duration_seconds"] > 0, row
