"""Hundreds of WebSocket connections driven from one thread (epoll), for tests that hold
many voice streams open: websocket-client needs a thread per connection, this needs none.

Each connection does the opening handshake, then only reads: it records the server's
JSON events, counts audio bytes, answers pings with pongs and answers a close. It can
be told not to read at all (a client that stops reading) and to send text events.
Server frames are unmasked; client frames are masked as RFC 6455 requires.
"""
import base64
import json
import os
import selectors
import socket
import struct
import time


class Conn:
    def __init__(self, sock, reading=True):
        self.sock = sock
        self.reading = reading
        self.buf = b""
        self.status = None      # HTTP status of the handshake answer
        self.events = []        # JSON events from the server
        self.audio_bytes = 0
        self.pings = 0
        self.close_code = None
        self.close_reason = None
        self.closed = False     # the TCP connection is gone

    def types(self):
        return [e.get("type") for e in self.events]


def frame(opcode, payload):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class IdleSockets:
    def __init__(self, base_url):
        hostport = base_url.split("://", 1)[1].rstrip("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.sel = selectors.DefaultSelector()
        self.conns = []

    def open(self, path, headers=(), reading=True, small_buffers=False):
        """Connects and sends the handshake; the answer is read by pump().
        small_buffers: a small receive buffer and segment size, so that the server's
        kernel buffers for this connection stay small too (a slow mobile client)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_buffers:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        s.settimeout(10)
        s.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               + "".join(h + "\r\n" for h in headers) + "\r\n")
        s.sendall(req.encode())
        s.setblocking(False)
        c = Conn(s, reading)
        self.conns.append(c)
        if reading:
            self.sel.register(s, selectors.EVENT_READ, c)
        return c

    def send(self, c, data):
        c.sock.setblocking(True)
        c.sock.settimeout(5)
        try:
            c.sock.sendall(data)
        except OSError:
            pass
        c.sock.setblocking(False)

    def send_event(self, c, **event):
        self.send(c, frame(0x1, json.dumps(event).encode()))

    def start_reading(self, c):
        if not c.reading and not c.closed:
            c.reading = True
            self.sel.register(c.sock, selectors.EVENT_READ, c)

    def pump(self, seconds, until=None):
        """Reads whatever arrives for up to seconds (or until until() is true)."""
        deadline = time.monotonic() + seconds
        while True:
            if until and until():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return bool(until and until())
            for key, _ in self.sel.select(timeout=min(left, 0.2)):
                self._read(key.data)

    def _drop(self, c):
        if not c.closed:
            c.closed = True
            if c.reading:
                self.sel.unregister(c.sock)
            c.sock.close()

    def _read(self, c):
        try:
            data = c.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        c.buf += data
        if c.status is None:
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            c.status = int(c.buf.split(b" ", 2)[1])
            c.buf = c.buf[end + 4:]
            if c.status != 101:
                self._drop(c)
                return
        self._frames(c)

    def _frames(self, c):
        while len(c.buf) >= 2:
            b0, b1 = c.buf[0], c.buf[1]
            n, pos = b1 & 0x7F, 2
            if n == 126:
                if len(c.buf) < 4:
                    return
                n, pos = struct.unpack("!H", c.buf[2:4])[0], 4
            elif n == 127:
                if len(c.buf) < 10:
                    return
                n, pos = struct.unpack("!Q", c.buf[2:10])[0], 10
            if len(c.buf) < pos + n:
                return
            payload, c.buf = c.buf[pos:pos + n], c.buf[pos + n:]
            opcode = b0 & 0x0F
            if opcode == 0x1:
                c.events.append(json.loads(payload))
            elif opcode == 0x2:
                c.audio_bytes += len(payload)
            elif opcode == 0x9:
                c.pings += 1
                self.send(c, frame(0xA, payload))
            elif opcode == 0x8:
                if len(payload) >= 2:
                    c.close_code = struct.unpack("!H", payload[:2])[0]
                    c.close_reason = payload[2:].decode("utf-8", "replace")
                self.send(c, frame(0x8, payload[:2]))
                self._drop(c)
                return

    def close_all(self, timeout=20):
        """Closes every open connection (1000) and waits for the server's answers."""
        for c in self.conns:
            if not c.closed:
                self.start_reading(c)
                self.send(c, frame(0x8, struct.pack("!H", 1000)))
        self.pump(timeout, until=lambda: all(c.closed for c in self.conns))
        for c in self.conns:
            self._drop(c)
