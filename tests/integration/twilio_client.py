"""A scripted Twilio Media Streams bridge for tests (no pytest here).

TwilioClient connects to /api/voice-agents/stream/twilio (or ?protocol=twilio) and behaves like
Twilio's side of a <Connect><Stream>: it sends `connected` and `start` (the token in
customParameters), then a `media` message of 8 kHz mu-law every 20 ms (silence unless
speaking), and plays the agent's `media` in real time into a jitter buffer the way a
phone would: a `mark` is echoed once the audio queued before it has played, and on
`clear` the unplayed audio is dropped and every outstanding mark is echoed at once.
"""
import audioop  # noqa: F401 (deprecated in 3.11, present in Debian 12's Python)
import base64
import json
import struct
import threading
import time

import websocket

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law


def to_mulaw_8k(pcm16k):
    """16 kHz PCM16LE -> 8 kHz mu-law (what a phone line carries)."""
    pcm8k, _ = audioop.ratecv(pcm16k, 2, 1, 16000, 8000, None)
    return audioop.lin2ulaw(pcm8k, 2)


def from_mulaw_8k(data):
    """8 kHz mu-law -> 16 kHz PCM16LE."""
    pcm8k = audioop.ulaw2lin(data, 2)
    return audioop.ratecv(pcm8k, 2, 1, 8000, 16000, None)[0]


START = {"accountSid": "AC" + "0" * 32, "callSid": "CA" + "1" * 32,
         "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw",
                                                "sampleRate": 8000, "channels": 1}}


class TwilioClient:
    def __init__(self, base_url, token=None, agent="hospital", query=False,
                 stream_sid="MZ" + "2" * 32, start=True, media_format=None, url_token=None,
                 timeout=10):
        """query=False connects as Twilio does: /api/voice-agents/stream/twilio with no query
        string (Twilio drops it), the agent and token in customParameters. query=True uses
        ?protocol=twilio&agent_type=... on the main stream path."""
        base = base_url.replace("http://", "ws://") + "/api/voice-agents/stream"
        q = ["protocol=twilio", f"agent_type={agent}"] if query else []
        if url_token:
            q.append(f"token={url_token}")
        url = (base if query else base + "/twilio") + ("?" + "&".join(q) if q else "")
        query_agent = query
        self.sid = stream_sid
        self.seq = 0
        self.received = []  # (t, message) of everything the server sent
        self.played = []    # (t, mu-law bytes) as "heard" by the caller
        self.marks_echoed = []  # (t, name)
        self.clears = []    # t of each clear
        self.buffer = []    # queued ("media", bytes) / ("mark", name) not yet played
        self.close_code, self.close_reason = None, None
        self.closed = threading.Event()
        self.cond = threading.Condition()
        self.send_lock = threading.Lock()
        self.mic_queue = []
        self.running = True
        self.ws = websocket.create_connection(url, timeout=timeout)
        self.ws.settimeout(None)
        threading.Thread(target=self._recv, daemon=True).start()
        if start:
            self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            params = {"token": token} if token else {}
            if not query_agent:
                params["agent_type"] = agent
            body = dict(START, streamSid=self.sid, customParameters=params)
            if media_format is not None:
                body["mediaFormat"] = media_format
            self.send({"event": "start", "start": body, "streamSid": self.sid})
            threading.Thread(target=self._mic, daemon=True).start()
            threading.Thread(target=self._player, daemon=True).start()

    # ---- the wire ----
    def send(self, msg):
        self.seq += 1
        msg = dict(msg, sequenceNumber=str(self.seq))
        with self.send_lock:
            self.ws.send(json.dumps(msg))

    def send_raw(self, data, binary=False):
        with self.send_lock:
            if binary:
                self.ws.send_binary(data)
            else:
                self.ws.send(data)

    def _recv(self):
        try:
            while True:
                op, data = self.ws.recv_data(control_frame=False)
                now = time.monotonic()
                with self.cond:
                    if op == websocket.ABNF.OPCODE_TEXT:
                        msg = json.loads(data.decode())
                        self.received.append((now, msg))
                        ev = msg.get("event")
                        if ev == "media":
                            self.buffer.append(("media",
                                                base64.b64decode(msg["media"]["payload"])))
                        elif ev == "mark":
                            self.buffer.append(("mark", msg["mark"]["name"]))
                        elif ev == "clear":
                            self.clears.append(now)
                            marks = [v for k, v in self.buffer if k == "mark"]
                            self.buffer = []
                            for name in marks:
                                self._echo(name)
                    elif op == websocket.ABNF.OPCODE_CLOSE:
                        if len(data) >= 2:
                            self.close_code = struct.unpack(">H", data[:2])[0]
                            self.close_reason = data[2:].decode(errors="replace")
                        break
                    self.cond.notify_all()
        except Exception:
            pass
        finally:
            with self.cond:
                self.closed.set()
                self.cond.notify_all()

    def _echo(self, name):
        self.marks_echoed.append((time.monotonic(), name))
        try:
            self.send({"event": "mark", "streamSid": self.sid, "mark": {"name": name}})
        except Exception:
            pass

    def _player(self):
        """Plays 20 ms of buffered agent audio per tick; echoes marks as they are reached."""
        next_t = time.monotonic()
        while self.running and not self.closed.is_set():
            next_t += FRAME_MS / 1000
            with self.cond:
                while self.buffer and self.buffer[0][0] == "mark":
                    self._echo(self.buffer.pop(0)[1])
                if self.buffer:
                    self.played.append((time.monotonic(), self.buffer.pop(0)[1]))
                    while self.buffer and self.buffer[0][0] == "mark":
                        self._echo(self.buffer.pop(0)[1])
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _mic(self):
        next_t = time.monotonic()
        silence = b"\xff" * FRAME_BYTES
        ts = 0
        while self.running and not self.closed.is_set():
            next_t += FRAME_MS / 1000
            with self.cond:
                frame = self.mic_queue.pop(0) if self.mic_queue else silence
                self.cond.notify_all()
            ts += FRAME_MS
            try:
                self.send({"event": "media", "streamSid": self.sid,
                           "media": {"track": "inbound", "chunk": str(ts // FRAME_MS),
                                     "timestamp": str(ts),
                                     "payload": base64.b64encode(frame).decode()}})
            except Exception:
                break
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    # ---- the caller ----
    def speak(self, pcm16k, tail_ms=1200):
        """Queues speech (then silence) on the microphone; returns when it has been sent."""
        data = to_mulaw_8k(pcm16k) + b"\xff" * (8 * tail_ms)
        frames = [data[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
                  for i in range(0, len(data), FRAME_BYTES)]
        with self.cond:
            self.mic_queue.extend(frames)
            while self.mic_queue and not self.closed.is_set():
                self.cond.wait(0.5)
        return time.monotonic()

    def wait(self, pred, timeout=20, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0 or self.closed.is_set():
                    if pred():
                        break
                    raise TimeoutError(f"{what} not seen; close={self.close_code} "
                                       f"{self.close_reason}")
                self.cond.wait(min(left, 0.1))

    def wait_closed(self, timeout=10):
        if not self.closed.wait(timeout):
            raise TimeoutError("socket not closed")
        return self.close_code, self.close_reason

    def media_after(self, t):
        with self.cond:
            return [m for tt, m in self.received if tt >= t and m.get("event") == "media"]

    def quiet_for(self, seconds):
        """True when no agent media arrived for `seconds` and the buffer has played out."""
        with self.cond:
            media = [tt for tt, m in self.received if m.get("event") == "media"]
            return bool(media) and time.monotonic() - media[-1] > seconds and not self.buffer

    def stop(self):
        try:
            self.send({"event": "stop", "streamSid": self.sid,
                       "stop": {"accountSid": START["accountSid"], "callSid": START["callSid"]}})
        except Exception:
            pass

    def close(self):
        self.running = False
        try:
            self.ws.close()
        except Exception:
            pass
