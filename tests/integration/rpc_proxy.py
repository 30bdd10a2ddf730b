"""A TCP proxy for the stream RPC links (common/rpc_stream.c: each frame a 4-byte
big-endian length and the envelope), placed between a client and a server to break
connections at the worst moment for an at-least-once client: a chosen request is
taken and its connection broken before any reply, so the client resends it on a fresh
connection; the first copy is held until that resend arrives and then both are sent
to the server at once (as when a request sat in a buffer while its connection died).
The reply to the first copy is read and dropped.

    proxy = RpcProxy(("127.0.0.1", server_port), breaks=lambda frame: ...)
    ... the client connects to proxy.port ...
    proxy.broken  # requests whose connection was broken
    proxy.close()
"""
import hashlib
import socket
import struct
import threading

HOLD_S = 5  # a first copy whose resend never comes is sent alone after this


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _read_frame(sock):
    head = _read_exact(sock, 4)
    if head is None:
        return None
    body = _read_exact(sock, struct.unpack(">I", head)[0])
    return None if body is None else head + body


class RpcProxy:
    def __init__(self, server, breaks):
        self.server = server
        self.breaks = breaks
        self.broken = 0
        self.lock = threading.Lock()
        self.held = {}  # digest of a first copy -> Event set when its resend arrives
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        """One request, one reply, in turn, as the protocol goes."""
        try:
            server = socket.create_connection(self.server, timeout=30)
        except OSError:  # not listening yet: the client sees its connection close
            client.close()
            return
        try:
            while True:
                request = _read_frame(client)
                if request is None:
                    return
                digest = hashlib.sha256(request).digest()
                with self.lock:
                    resent = self.held.pop(digest, None)
                if resent:  # the first copy goes now too
                    resent.set()
                elif self.breaks(request):
                    arrived = threading.Event()
                    with self.lock:
                        self.broken += 1
                        self.held[digest] = arrived
                    client.shutdown(socket.SHUT_RDWR)  # the client resends elsewhere
                    arrived.wait(HOLD_S)
                    server.sendall(request)
                    _read_frame(server)  # the server still answers the first copy
                    return
                server.sendall(request)
                reply = _read_frame(server)
                if reply is None:
                    return
                client.sendall(reply)
        except OSError:
            return
        finally:
            client.close()
            server.close()
