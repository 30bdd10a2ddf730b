"""vap-talk, the command-line voice client, end to end: the real binary (sanitizer build)
against the real stack (gateway, auth, usage, one vap-voice worker) with speech made by
flite. Covers --help (every option listed), a spoken turn then a typed one (transcripts,
agent text, metrics, the saved reply audio), --json, refusals (exit 3 with the reason in
words), --sessions with percentiles, and the Twilio protocol: against a scripted Twilio
peer in this file (marks echoed when played, clear honoured), and against the gateway
over /api/voice-agents/stream/twilio."""
import base64
import hashlib
import json
import math
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import wave

import pytest

from stack import REPO, build_dir, running_stack, sanitizer_findings
from test_agents import admin_token, call, new_otp, otp_token

TALK = os.path.join(build_dir(), "bin", "vap-talk")
QUESTION = "Is Doctor Patel available on Monday morning"


def run_talk(*args, timeout=90):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    p = subprocess.run([TALK, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert not sanitizer_findings(p.stderr), p.stderr
    return p


def flite_wav(path, text):
    subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", path], check=True)
    return path


def read_wav(path):
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.readframes(w.getnframes())


def rms(pcm):
    n = len(pcm) // 2
    s = struct.unpack(f"<{n}h", pcm[:n * 2])
    return (sum(x * x for x in s) / max(1, n)) ** 0.5


def words(text):
    return re.findall(r"[a-z']+", text.lower())


def lines_after(stdout, label):
    """The texts of the human lines "[1.23s] label: text"."""
    return re.findall(r"^\[[\d.]+s\] " + re.escape(label) + r": (.*)$", stdout, re.M)


@pytest.fixture(scope="module")
def tstack():
    yield from running_stack(1)


@pytest.fixture(scope="module")
def question_wav():
    with tempfile.TemporaryDirectory() as d:
        yield flite_wav(os.path.join(d, "q.wav"), QUESTION)


# ---- options -------------------------------------------------------------------------

def test_help_lists_every_option_and_usage_errors_exit_2():
    p = run_talk("--help")
    assert p.returncode == 0 and p.stderr == ""
    with open(os.path.join(REPO, "tools", "vap-talk", "main.c")) as f:
        source = f.read()
    table = source[source.index("longopts[] = {"):]
    options = re.findall(r'\{"([a-z-]+)", (?:required|no)_argument', table[:table.index("};")])
    assert len(options) >= 18, options
    for name in options:
        assert re.search(r"--" + re.escape(name) + r"\b", p.stdout), f"--{name} not in --help"
    for needle in ("Exit status", "4403", "GW_VOICE_MAX_PER_TOKEN", "p50/p95/p99"):
        assert needle in p.stdout
    assert run_talk("--version").stdout.startswith("vap-talk ")
    for bad in (["--agent", "hospital", "--text", "hi"],                  # no code
                ["--code", "1", "--text", "hi"],                          # no agent
                ["--code", "1", "--agent", "hospital"],                   # nothing to say
                ["--code", "1", "--agent", "x", "--text", "hi", "--sessions", "0"],
                ["--code", "1", "--agent", "x", "--text", "hi", "--protocol", "sip"],
                ["--code", "1", "--agent", "x", "--text", "hi", "--protocol", "twilio"],
                ["--code", "1", "--agent", "x", "--wav", "/nonexistent.wav"],
                ["--bogus"]):
        p = run_talk(*bad)
        assert p.returncode == 2, (bad, p.stdout, p.stderr)
        assert p.stderr.startswith("vap-talk: "), p.stderr


def test_a_wav_that_is_not_pcm16_is_refused_with_a_hint(tmp_path):
    path = str(tmp_path / "f.wav")
    subprocess.run(["sox", "-n", "-r", "16000", "-e", "floating-point", "-b", "32", path,
                    "trim", "0", "0.5"], check=True)
    p = run_talk("--code", "1", "--agent", "hospital", "--wav", path)
    assert p.returncode == 2 and "16-bit PCM" in p.stderr and "sox" in p.stderr


# ---- the native protocol against the real stack -------------------------------------

def test_spoken_then_typed_turn_end_to_end(tstack, question_wav, tmp_path):
    admin = admin_token(tstack.url)
    otp = new_otp(tstack.url, admin, 1)
    # 44.1 kHz stereo: vap-talk mixes down and resamples to 16 kHz itself.
    wav44 = str(tmp_path / "q44.wav")
    subprocess.run(["sox", question_wav, "-r", "44100", "-c", "2", wav44], check=True)
    out = str(tmp_path / "reply.wav")
    p = run_talk("--base", tstack.url, "--code", otp["code"], "--agent", "hospital",
                 "--wav", wav44, "--text", "Which floor is cardiology on?", "--out", out)
    assert p.returncode == 0, p.stdout + p.stderr
    so = p.stdout
    assert lines_after(so, "you (partial)"), so
    finals = lines_after(so, "you")
    assert finals and "patel" in finals[0] and "monday" in finals[0], so
    agent = lines_after(so, "agent")
    assert len(agent) == 3, so  # greeting, the spoken turn's reply, the typed turn's reply
    assert "hospital" in agent[0].lower()
    assert "patel" in agent[1].lower() and "monday" in agent[1].lower(), agent
    assert "second floor" in agent[2].lower(), agent
    metrics = re.findall(r"metrics turn=(\d+) eot=-?\d+ stt=\d+ llm=\d+ tts=\d+ v2v=(\d+)ms", so)
    assert [t for t, _ in metrics] == ["1", "2"], so
    assert all(0 < int(v) < 5000 for _, v in metrics), metrics
    assert re.search(r"first frame \d+ ms after you finished", so)
    assert re.search(r"session ended: client_ended \(turns 2,", so), so
    assert "result: ok, 2 turn(s)" in so
    # The saved audio: speech, as long as the three things the agent said.
    pcm = read_wav(out)
    secs = len(pcm) / 32000
    n_words = sum(len(words(a)) for a in agent)
    assert rms(pcm) > 300
    assert 0.2 * n_words < secs < 0.9 * n_words, (secs, n_words)
    assert re.search(r"saved [\d.]+ s of agent audio to " + re.escape(out), so)
    # One session was recorded against the code, with its duration.
    deadline = time.time() + 10
    while time.time() < deadline:
        _, rows = call(tstack.url, "GET", "/api/agents/usage?agent_type=hospital&limit=1000",
                       token=admin)
        mine = [r for r in rows if r["otp_id"] == otp["id"]]
        if mine and mine[0]["duration_seconds"]:
            break
        time.sleep(0.2)
    assert len(mine) == 1 and mine[0]["duration_seconds"] > 5, mine


def test_typed_turn_alone_with_json_output(tstack):
    admin = admin_token(tstack.url)
    otp = new_otp(tstack.url, admin, 1)
    p = run_talk("--base", tstack.url, "--code", otp["code"], "--agent", "hospital",
                 "--text", "Which floor is cardiology on?", "--json", "--barge-in",
                 "--codec", "opus", "--rate", "48000")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    events = [x["event"] for x in lines if "event" in x]
    assert all(x["session"] == 1 and x["t"] >= 0 for x in lines if "event" in x)
    types = [e["type"] for e in events]
    assert types[0] == "session.started" and types[-1] == "session.ended", types
    assert events[0]["audio"]["codec"] == "opus"
    reply = [e for e in events if e["type"] == "agent.text" and e["final"] and e["turn_id"] == 1]
    assert reply and "second floor" in reply[0]["text"].lower(), reply
    assert any(e["type"] == "metrics" and e["turn_id"] == 1 for e in events)
    summary = lines[-1]["summary"]
    assert summary["ok"] == 1 and summary["turns"] == 1
    assert summary["voice_to_voice_ms"]["n"] == 1 and summary["first_audio_ms"]["n"] == 1


def test_refusals_exit_3_with_the_reason(tstack):
    admin = admin_token(tstack.url)
    base = ["--base", tstack.url, "--text", "Which floor is cardiology on?", "--barge-in"]
    # An unknown code.
    p = run_talk(*base, "--code", "000000", "--agent", "hospital")
    assert p.returncode == 3 and "login refused: HTTP 401" in p.stderr, p.stderr
    # An unknown agent.
    otp = new_otp(tstack.url, admin, 1)
    p = run_talk(*base, "--code", otp["code"], "--agent", "nosuchagent")
    assert p.returncode == 3 and "access refused: HTTP 404" in p.stderr, p.stderr
    # An exhausted code: its one use is spent.
    token = otp_token(tstack.url, otp["code"])
    assert call(tstack.url, "POST", "/api/agents/access", {"agent_type": "hospital"},
                token)[0] == 200
    p = run_talk(*base, "--code", otp["code"], "--agent", "hospital")
    assert p.returncode == 3 and "HTTP 403" in p.stderr, p.stderr
    # The stream itself refuses: four sessions on one token (the gateway allows three).
    otp = new_otp(tstack.url, admin, 4)
    p = run_talk(*base, "--code", otp["code"], "--agent", "hospital", "--sessions", "4",
                 "--per-login", "4", "--quiet")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "close 4429, too many concurrent sessions for this token" in p.stderr, p.stderr
    assert "sessions: 3 ok, 1 refused, 0 failed (of 4)" in p.stdout, p.stdout


def test_concurrent_sessions_print_percentiles(tstack, question_wav):
    admin = admin_token(tstack.url)
    otp = new_otp(tstack.url, admin, 3)
    p = run_talk("--base", tstack.url, "--code", otp["code"], "--agent", "hospital",
                 "--wav", question_wav, "--sessions", "3", "--barge-in")
    assert p.returncode == 0, p.stdout + p.stderr
    so = p.stdout
    assert re.search(r"^\[#3 [\d.]+s\] you: .*patel", so, re.M), so
    rows = re.findall(r"^\s+(\d)\s+ok\s+1\s+(\d+)\s+(\d+)\s*$", so, re.M)
    assert sorted(r[0] for r in rows) == ["1", "2", "3"], so
    assert "sessions: 3 ok, 0 refused, 0 failed (of 3)" in so
    m = re.search(r"voice_to_voice_ms\s+n=3\s+p50=(\d+)\s+p95=(\d+)\s+p99=(\d+)", so)
    assert m and 0 < int(m[1]) <= int(m[2]) <= int(m[3]) < 5000, so
    assert re.search(r"first_audio_ms\s+n=3\s+p50=\d+\s+p95=\d+\s+p99=\d+", so), so
    # The code's three uses are spent.
    _, otps = call(tstack.url, "GET", "/api/otps/", token=admin)
    assert next(o for o in otps if o["id"] == otp["id"])["remaining_uses"] == 0


# ---- the Twilio protocol -------------------------------------------------------------

def ulaw_encode(sample):
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exp, mask = 7, 0x4000
    while exp > 0 and not sample & mask:
        exp, mask = exp - 1, mask >> 1
    return ~(sign | exp << 4 | (sample >> (exp + 3)) & 0x0F) & 0xFF


def ulaw_decode(byte):
    byte = ~byte & 0xFF
    s = (((byte & 0x0F) << 3) + 0x84 << ((byte >> 4) & 7)) - 0x84
    return -s if byte & 0x80 else s


def tone_frames(ms, hz=440, amp=8000):
    """20 ms mu-law frames (160 bytes) of a tone at 8 kHz."""
    n = 8 * ms
    data = bytes(ulaw_encode(int(amp * math.sin(2 * math.pi * hz * i / 8000))) for i in range(n))
    return [data[i:i + 160] for i in range(0, n, 160)]


class TwilioPeer:
    """A scripted stand-in for the gateway's Twilio side, on a raw socket: answers the
    two REST calls, upgrades the stream, sends a greeting burst and a mark, answers the
    visitor's speech with a reply burst and a mark, then clears it half a second in, and
    records everything the client sends with arrival times."""

    GREETING_MS, REPLY_MS, CLEAR_AFTER_S = 1000, 2000, 0.5

    def __init__(self):
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.srv.getsockname()[1]}"
        self.received = []  # (t, message) from the client
        self.sent = {}      # what -> time sent
        self.lock = threading.Lock()
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        f = conn.makefile("rb")
        request = f.readline().decode()
        headers = {}
        while True:
            line = f.readline().decode().strip()
            if not line:
                break
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        method, path, _ = request.split(" ", 2)
        if method == "POST":
            f.read(int(headers.get("content-length", "0")))
            body = ({"access_token": "tok-twilio", "token_type": "bearer", "expires_in": 3600}
                    if path == "/api/auth/login/otp" else
                    {"message": "Access granted", "agent_type": "hospital", "remaining_uses": 0})
            data = json.dumps(body).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(data)).encode() +
                         b"\r\n\r\n" + data)
            conn.close()
            return
        self.path = path
        accept = base64.b64encode(hashlib.sha1(
            (headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()
        ).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        self.conn, self.f = conn, f
        self._session()

    def _recv(self):
        head = self.f.read(2)
        if len(head) < 2:
            return None, None
        op, n = head[0] & 0x0F, head[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.f.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.f.read(8))[0]
        mask = self.f.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.f.read(n)))
        return op, data

    def _send(self, op, data):
        n = len(data)
        head = bytes([0x80 | op]) + (bytes([n]) if n < 126 else
                                     bytes([126]) + struct.pack(">H", n) if n < 65536 else
                                     bytes([127]) + struct.pack(">Q", n))
        with self.lock:
            self.conn.sendall(head + data)

    def _send_json(self, what, msg):
        self.sent[what] = time.monotonic()
        self._send(1, json.dumps(msg).encode())

    def _media_and_mark(self, sid, frames, mark):
        for fr in frames:
            self._send(1, json.dumps({"event": "media", "streamSid": sid,
                                      "media": {"payload": base64.b64encode(fr).decode()}})
                       .encode())
        self._send_json(mark, {"event": "mark", "streamSid": sid, "mark": {"name": mark}})

    def _session(self):
        voiced, quiet, replied, sid = 0, 0, False, None
        while True:
            op, data = self._recv()
            if op is None or op == 8:
                break
            msg = json.loads(data)
            self.received.append((time.monotonic(), msg))
            if msg["event"] == "start":
                sid = msg["streamSid"]
                self._media_and_mark(sid, tone_frames(self.GREETING_MS), "greeting")
            elif msg["event"] == "media" and not replied:
                pcm = [ulaw_decode(b) for b in base64.b64decode(msg["media"]["payload"])]
                loud = (sum(x * x for x in pcm) / len(pcm)) ** 0.5 > 500
                voiced, quiet = voiced + loud, 0 if loud else quiet + 1
                if voiced > 10 and quiet >= 15:  # 300 ms of silence after speech
                    replied = True
                    self._media_and_mark(sid, tone_frames(self.REPLY_MS, hz=300), "reply")
                    threading.Timer(self.CLEAR_AFTER_S, self._send_json,
                                    ("clear", {"event": "clear", "streamSid": sid})).start()
            elif msg["event"] == "stop":
                self._send(8, struct.pack(">H", 1000))
                break
        self.conn.close()
        self.done.set()

    def of(self, event):
        return [(t, m) for t, m in self.received if m["event"] == event]


def test_twilio_protocol_against_a_scripted_peer(question_wav, tmp_path):
    peer = TwilioPeer()
    out = str(tmp_path / "reply.wav")
    p = run_talk("--base", peer.url, "--code", "123456", "--agent", "hospital", "--wav",
                 question_wav, "--protocol", "twilio", "--out", out, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert peer.done.wait(5)
    # As Twilio connects: the protocol's own path, no query string (Twilio drops it); the
    # token and the agent travel in customParameters.
    assert peer.path == "/api/voice-agents/stream/twilio", peer.path
    msgs = [m for _, m in peer.received]
    assert msgs[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = msgs[1]
    sid = start["streamSid"]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert sid.startswith("MZ") and start["start"]["streamSid"] == sid
    assert start["start"]["accountSid"].startswith("AC")
    assert start["start"]["callSid"].startswith("CA")
    assert start["start"]["tracks"] == ["inbound"]
    assert start["start"]["customParameters"] == {"token": "tok-twilio", "agent_type": "hospital"}
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                             "channels": 1}
    # Every later message is numbered in order and names the stream.
    seqs = [int(m["sequenceNumber"]) for m in msgs[1:]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(m["streamSid"] == sid for m in msgs[1:])
    media = [m for m in msgs if m["event"] == "media"]
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)
    assert [int(m["media"]["chunk"]) for m in media] == list(range(1, len(media) + 1))
    assert all(m["media"]["track"] == "inbound" for m in media)
    stamps = [int(m["media"]["timestamp"]) for m in media]
    assert stamps == sorted(stamps)
    # Media flows in real time: 20 ms apart on average.
    times = [t for t, m in peer.of("media")]
    assert 0.017 < (times[-1] - times[0]) / (len(times) - 1) < 0.025
    # The greeting's mark comes back once its second of audio has played, not at once.
    (t_greet, greet), (t_reply, reply) = peer.of("mark")
    assert greet["mark"]["name"] == "greeting" and reply["mark"]["name"] == "reply"
    assert 0.85 < t_greet - peer.sent["greeting"] < 1.5, t_greet - peer.sent["greeting"]
    # clear: the reply's mark is echoed at once, before its audio could have played.
    assert 0 <= t_reply - peer.sent["clear"] < 0.25, t_reply - peer.sent["clear"]
    (_, stop), = peer.of("stop")
    assert stop["stop"]["callSid"] == start["start"]["callSid"]
    assert stop["stop"]["accountSid"] == start["start"]["accountSid"]
    so = p.stdout
    assert re.search(r"agent audio started \d+ ms after you finished \(v2v estimate\)", so), so
    dropped = re.search(r"clear: dropped (\d+) ms of unplayed agent audio, 1 mark", so)
    assert dropped and 1200 <= int(dropped[1]) <= 1550, so
    assert "marks 2 received, 2 echoed; clears 1" in so, so
    # --out holds what was played: the greeting and half a second of the reply, at 16 kHz.
    secs = len(read_wav(out)) / 32000
    assert 1.3 < secs < 1.8, secs


def test_twilio_protocol_against_the_gateway(tstack, question_wav, tmp_path):
    admin = admin_token(tstack.url)
    otp = new_otp(tstack.url, admin, 1)
    out = str(tmp_path / "reply.wav")
    # Spoken over the greeting: the gateway clears it, then answers.
    p = run_talk("--base", tstack.url, "--code", otp["code"], "--agent", "hospital", "--wav",
                 question_wav, "--protocol", "twilio", "--barge-in", "--out", out)
    assert p.returncode == 0, p.stdout + p.stderr
    so = p.stdout
    assert re.search(r"agent audio started \d+ ms after you finished \(v2v estimate\)", so), so
    assert re.search(r"clear: dropped \d+ ms", so), so
    m = re.search(r"marks (\d+) received, (\d+) echoed; clears (\d+)", so)
    assert m and m[1] == m[2] and int(m[3]) >= 1, so
    pcm = read_wav(out)
    assert rms(pcm) > 300 and len(pcm) / 32000 > 3.0  # a bit of greeting, then the reply
