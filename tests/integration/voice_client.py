"""A native-protocol voice client for tests and benchmarks (no pytest here).

VoiceClient connects to /api/voice-agents/stream, collects events and audio frames on a
background thread with arrival times, and streams 16 kHz speech in real time as PCM16
or Opus. Opus packets are made with opusenc (opus-tools) and read back out of the Ogg
stream; agent audio in Opus is decoded by wrapping the packets in Ogg for opusdec.
"""
import json
import os
import struct
import subprocess
import tempfile
import threading
import time
import wave

import websocket

FRAME_MS = 20


def read_wav_16k(path):
    """Mono 16-bit samples of a WAV, resampled to 16 kHz with sox if needed."""
    with wave.open(path) as w:
        if w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2:
            return w.readframes(w.getnframes())
    out = subprocess.run(["sox", path, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed",
                          "-t", "raw", "-"], check=True, capture_output=True)
    return out.stdout


def silence(ms, rate=16000):
    return b"\0\0" * (rate * ms // 1000)


def resample(pcm, rate_in, rate_out):
    if rate_in == rate_out:
        return pcm
    out = subprocess.run(["sox", "-t", "raw", "-r", str(rate_in), "-e", "signed", "-b", "16",
                          "-c", "1", "-", "-t", "raw", "-r", str(rate_out), "-e", "signed",
                          "-b", "16", "-c", "1", "-"], input=pcm, check=True,
                         capture_output=True)
    return out.stdout


def ogg_packets(data):
    """The packets of an Ogg stream (continued packets joined)."""
    packets, pos, cur = [], 0, b""
    while pos + 27 <= len(data):
        assert data[pos:pos + 4] == b"OggS", "not an Ogg page"
        nseg = data[pos + 26]
        segs = data[pos + 27:pos + 27 + nseg]
        body = pos + 27 + nseg
        for s in segs:
            cur += data[body:body + s]
            body += s
            if s < 255:
                packets.append(cur)
                cur = b""
        pos = body
    return packets


def opus_encode(pcm16k, rate=16000):
    """Raw 20 ms Opus packets of 16 kHz PCM (resampled to rate first)."""
    pcm = resample(pcm16k, 16000, rate)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.raw"), os.path.join(d, "out.opus")
        with open(src, "wb") as f:
            f.write(pcm)
        subprocess.run(["opusenc", "--quiet", "--raw", "--raw-rate", str(rate), "--raw-chan",
                        "1", "--framesize", "20", "--bitrate", "32", src, dst], check=True)
        with open(dst, "rb") as f:
            return ogg_packets(f.read())[2:]  # skip OpusHead and OpusTags


def _crc_table():
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def _ogg_page(serial, seqno, granule, packets, flags=0):
    segs, body = [], b""
    for p in packets:
        n = len(p)
        while n >= 255:
            segs.append(255)
            n -= 255
        segs.append(n)
        body += p
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seqno, 0, len(segs))
    page = bytearray(header + bytes(segs) + body)
    crc = 0
    for b in page:
        crc = ((crc << 8) ^ _CRC[((crc >> 24) ^ b) & 0xFF]) & 0xFFFFFFFF
    page[22:26] = struct.pack("<I", crc)
    return bytes(page)


def opus_decode(packets, rate):
    """16 kHz PCM of raw 20 ms Opus packets (as the server sends them)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 0, rate, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    pages = [_ogg_page(1, 0, 0, [head], 2), _ogg_page(1, 1, 0, [tags])]
    for i, p in enumerate(packets):
        last = i == len(packets) - 1
        pages.append(_ogg_page(1, i + 2, (i + 1) * 960, [p], 4 if last else 0))
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.opus"), os.path.join(d, "out.raw")
        with open(src, "wb") as f:
            f.write(b"".join(pages))
        subprocess.run(["opusdec", "--quiet", "--rate", "16000", src, dst], check=True)
        # opusdec writes a WAV header unless the name says raw; read it as WAV if so.
        with open(dst, "rb") as f:
            data = f.read()
        if data[:4] == b"RIFF":
            data = data[44:]
        return data


def rms(pcm):
    n = len(pcm) // 2
    if not n:
        return 0.0
    s = struct.unpack(f"<{n}h", pcm[:n * 2])
    return (sum(x * x for x in s) / n) ** 0.5


class VoiceClient:
    def __init__(self, base_url, token=None, agent="hospital", codec="pcm16",
                 sample_rate=16000, resume=None, header_token=True, timeout=10, mic=True):
        ws_url = base_url.replace("http://", "ws://") + "/api/voice-agents/stream"
        q = [f"agent_type={agent}", f"codec={codec}", f"sample_rate={sample_rate}"]
        if resume:
            q.append(f"resume={resume}")
        headers = []
        if token and header_token:
            headers.append(f"Authorization: Bearer {token}")
        elif token:
            q.append(f"token={token}")
        self.codec, self.rate = codec, sample_rate
        self.events, self.audio = [], []  # (t, event) / (t, bytes)
        self.close_code, self.close_reason = None, None
        self.closed = threading.Event()
        self.cond = threading.Condition()
        self.ws = websocket.create_connection(ws_url + "?" + "&".join(q), header=headers,
                                              timeout=timeout)
        self.ws.settimeout(None)  # a session may be quiet for a while; waits have deadlines
        self.thread = threading.Thread(target=self._recv, daemon=True)
        self.thread.start()
        # Like a browser's microphone: a frame every 20 ms, silence unless speaking.
        self.mic_queue = []
        self.mic_lock = threading.Condition()
        self.mic_sent = 0
        self.mic_running = mic
        if mic:
            self.silence_frame = self.frames_of(silence(FRAME_MS))[0]
            self.mic_thread = threading.Thread(target=self._mic, daemon=True)
            self.mic_thread.start()

    def _mic(self):
        next_t = time.monotonic()
        while self.mic_running and not self.closed.is_set():
            next_t += FRAME_MS / 1000
            with self.mic_lock:
                frame = self.mic_queue.pop(0) if self.mic_queue else self.silence_frame
            try:
                self.ws.send_binary(frame)
            except Exception:
                break
            with self.mic_lock:
                self.mic_sent += 1
                self.mic_lock.notify_all()
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.2:
                next_t = time.monotonic()

    def _recv(self):
        try:
            while True:
                op, data = self.ws.recv_data(control_frame=False)
                now = time.monotonic()
                with self.cond:
                    if op == websocket.ABNF.OPCODE_TEXT:
                        self.events.append((now, json.loads(data.decode())))
                    elif op == websocket.ABNF.OPCODE_BINARY:
                        self.audio.append((now, data))
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

    # ---- waiting ----
    def wait_event(self, pred, timeout=20, start=0):
        """The first event (index >= start) for which pred(event) holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.events)):
                    if pred(self.events[i][1]):
                        return self.events[i][1]
                left = deadline - time.monotonic()
                if left <= 0 or self.closed.is_set():
                    types = [e["type"] for _, e in self.events]
                    raise TimeoutError(f"event not seen; got {types} close={self.close_code}")
                self.cond.wait(left)

    def wait_type(self, type_, timeout=20, **fields):
        return self.wait_event(lambda e: e.get("type") == type_ and
                               all(e.get(k) == v for k, v in fields.items()), timeout)

    def wait_closed(self, timeout=10):
        if not self.closed.wait(timeout):
            raise TimeoutError("socket not closed")
        return self.close_code, self.close_reason

    def of_type(self, type_):
        with self.cond:
            return [e for _, e in self.events if e.get("type") == type_]

    # ---- sending ----
    def send_event(self, **event):
        self.ws.send(json.dumps(event))

    def send_frames(self, frames, realtime=True):
        """Sends frames in real time (through the microphone stream when it runs);
        returns the time the last one left."""
        if self.mic_running:
            with self.mic_lock:
                target = self.mic_sent + len(self.mic_queue) + len(frames)
                self.mic_queue.extend(frames)
                while self.mic_sent < target and not self.closed.is_set():
                    self.mic_lock.wait(0.5)
            return time.monotonic()
        start = time.monotonic()
        for i, f in enumerate(frames):
            if realtime:
                delay = start + i * FRAME_MS / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.ws.send_binary(f)
        return time.monotonic()

    def frames_of(self, pcm16k):
        """Client frames (20 ms) of 16 kHz speech in this client's codec and rate."""
        if self.codec == "opus":
            return opus_encode(pcm16k, self.rate)
        pcm = resample(pcm16k, 16000, self.rate)
        step = self.rate * FRAME_MS // 1000 * 2
        return [pcm[i:i + step].ljust(step, b"\0") for i in range(0, len(pcm), step)]

    def speak(self, pcm16k, tail_ms=1500, realtime=True):
        """Streams speech then silence; returns the time the speech ended."""
        frames = self.frames_of(pcm16k)
        end = self.send_frames(frames, realtime)
        self.send_frames(self.frames_of(silence(tail_ms)), realtime)
        return end

    def audio_pcm(self, since=0.0):
        """16 kHz PCM of the agent audio received after time since."""
        with self.cond:
            frames = [d for t, d in self.audio if t >= since]
        if self.codec == "opus":
            return opus_decode(frames, self.rate) if frames else b""
        return resample(b"".join(frames), self.rate, 16000)

    def close(self):
        self.mic_running = False
        try:
            self.ws.close()
        except Exception:
            pass
