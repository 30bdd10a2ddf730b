#!/usr/bin/python3
"""A local stand-in for the LLM APIs the voice worker calls, for unit and integration tests.

It speaks both wire formats the way the real services stream them:
  POST /v1/messages          Anthropic Messages API (SSE events message_start ... message_stop)
  POST /v1/chat/completions  OpenAI chat completions (data: {chunk} ... data: [DONE])
(also /chat/completions without the /v1 prefix). Replies are derived from the last user
message ("You said: <text>. ..."), streamed word by word with a small delay, over
HTTP/1.1 chunked encoding with keep-alive.

Fault modes, chosen per request by a magic word in the last user message (or the
X-Mock-Fault header, or for the next N requests by POST /_fault {"mode": m, "count": n}):
  FAULT_HANG       accept the request, send nothing (until the client goes away)
  FAULT_STALL      send headers and the opening events, then no text (first-token timeout)
  FAULT_TRICKLE    stream the reply one byte at a time, slowly (FAULT_TRICKLE_MS, 30 ms)
  FAULT_SLOW       a long reply, 100 ms per word (for cancellation)
  FAULT_CLOSE      close the connection after two words (no message_stop / [DONE])
  FAULT_429        429 with retry-after: 30 and the API's error body
  FAULT_429ONCE    429 with retry-after: 0 for the first such request, then a normal reply
  FAULT_500        500 api_error / server_error
  FAULT_529        529 overloaded_error (Anthropic's "overloaded")
  FAULT_MALFORMED  a text event whose JSON is broken
  FAULT_ERROREVENT an in-stream error event (Anthropic: overloaded_error)
  FAULT_401        401 authentication error
Requests without the right key header (when --api-key is given) get 401.

Control endpoints: GET /_requests (every API request so far: method, path, headers,
JSON body, time), DELETE /_requests (forget them), POST /_fault, GET /_health.

Usage: mock_llm.py [PORT] [--api-key KEY] [--delay-ms N]; PORT 0 (default) picks a free
port. The first line on stdout is "PORT <n>". Python 3 standard library only.
"""
import json
import os
import select
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {
    "lock": threading.Lock(),
    "requests": [],
    "fault": None,
    "fault_count": 0,
    "once_seen": set(),
    "api_key": None,
    "delay_ms": 10,
}

FAULTS = ("HANG", "STALL", "TRICKLE", "SLOW", "CLOSE", "429ONCE", "429", "500", "529",
          "MALFORMED", "ERROREVENT", "401")


class ClientGone(Exception):
    pass


def last_user_text(body, anthropic):
    msgs = body.get("messages") or []
    for m in reversed(msgs):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return c if isinstance(c, str) else ""
    return ""


def pick_fault(handler, text):
    hdr = handler.headers.get("X-Mock-Fault")
    if hdr:
        return hdr.upper()
    # Only the last line: a client may join consecutive user turns with newlines.
    last = text.rstrip("\n").split("\n")[-1]
    for f in FAULTS:
        if "FAULT_" + f in last:
            return f
    with STATE["lock"]:
        if STATE["fault"] and STATE["fault_count"] != 0:
            if STATE["fault_count"] > 0:
                STATE["fault_count"] -= 1
            return STATE["fault"]
    return None


def reply_words(text, slow):
    clean = " ".join(text.split())
    if len(clean) > 200:
        clean = clean[:200]
    words = ("You said: %s. Thank you, how else can I help?" % clean).split(" ")
    if slow:
        words += ("This is a long answer that goes on and on so that a test has time to "
                  "interrupt it while it is still being streamed word by word.").split(" ") * 5
    return [w + " " if i + 1 < len(words) else w for i, w in enumerate(words)]


def count_tokens(body):
    n = len(str(body.get("system", "")).split())
    for m in body.get("messages") or []:
        n += len(str(m.get("content", "")).split()) + 3
    return max(n, 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"

    def setup(self):
        super().setup()
        # Real API front ends send small SSE writes at once; without this, Nagle plus the
        # client's delayed ACK adds ~40 ms to the first event on a reused connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet: tests read stdout/stderr
        pass

    # --- plumbing -------------------------------------------------------------
    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, anthropic):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        if anthropic:
            self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
            self.send_header("anthropic-organization-id", "mock")
        else:
            self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:24])
            self.send_header("openai-processing-ms", "12")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data, trickle_ms=0):
        if isinstance(data, str):
            data = data.encode()
        try:
            if trickle_ms:
                for i in range(len(data)):
                    self.wfile.write(b"1\r\n" + data[i:i + 1] + b"\r\n")
                    self.wfile.flush()
                    time.sleep(trickle_ms / 1000.0)
            else:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def end_chunks(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def hard_close(self):
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def wait_client_gone(self, limit_s=120.0):
        end = time.time() + limit_s
        while time.time() < end:
            r, _, _ = select.select([self.connection], [], [], 0.05)
            if r:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        self.close_connection = True

    def sleep_word(self, ms):
        if ms > 0:
            time.sleep(ms / 1000.0)

    # --- control endpoints ----------------------------------------------------
    def do_GET(self):
        if self.path.startswith("/_requests"):
            with STATE["lock"]:
                self.send_json(200, STATE["requests"])
        elif self.path.startswith("/_health"):
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": {"type": "not_found_error", "message": "no route"}})

    def do_DELETE(self):
        if self.path.startswith("/_requests"):
            with STATE["lock"]:
                STATE["requests"] = []
                STATE["once_seen"] = set()
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": {"type": "not_found_error", "message": "no route"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path.startswith("/_fault"):
            try:
                cfg = json.loads(raw or b"{}")
            except ValueError:
                cfg = {}
            with STATE["lock"]:
                STATE["fault"] = (cfg.get("mode") or "").upper() or None
                STATE["fault_count"] = int(cfg.get("count", -1))
            self.send_json(200, {"ok": True})
            return
        anthropic = self.path.rstrip("/").endswith("/v1/messages")
        openai = self.path.rstrip("/").endswith("/chat/completions")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with STATE["lock"]:
            STATE["requests"].append({
                "method": "POST", "path": self.path, "time": time.time(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            })
        if not (anthropic or openai):
            self.send_json(404, {"error": {"type": "not_found_error", "message": "no route"}})
            return
        if not isinstance(body, dict):
            self.api_error(anthropic, 400, "invalid_request_error", "body is not JSON")
            return
        key = STATE["api_key"]
        given = self.headers.get("x-api-key") if anthropic else \
            (self.headers.get("Authorization") or "").replace("Bearer ", "", 1)
        text = last_user_text(body, anthropic)
        fault = pick_fault(self, text)
        if (key and given != key) or fault == "401":
            if anthropic:
                self.api_error(True, 401, "authentication_error", "invalid x-api-key")
            else:
                self.api_error(False, 401, "invalid_request_error",
                               "Incorrect API key provided: %s...." % (given or "")[:3],
                               code="invalid_api_key")
            return
        if anthropic and self.headers.get("anthropic-version") != "2023-06-01":
            self.api_error(True, 400, "invalid_request_error", "anthropic-version missing")
            return
        try:
            self.serve(anthropic, body, text, fault)
        except ClientGone:
            self.close_connection = True

    def api_error(self, anthropic, status, etype, message, code=None, extra=None):
        if anthropic:
            obj = {"type": "error", "error": {"type": etype, "message": message}}
        else:
            obj = {"error": {"message": message, "type": etype, "param": None, "code": code}}
        self.send_json(status, obj, extra)

    # --- the two wire formats ---------------------------------------------------
    def serve(self, anthropic, body, text, fault):
        if fault == "HANG":
            self.wait_client_gone()
            return
        if fault == "429":
            self.api_error(anthropic, 429, "rate_limit_error", "Number of requests exceeded",
                           code="rate_limit_exceeded", extra={"retry-after": "30"})
            return
        if fault == "429ONCE":
            with STATE["lock"]:
                first = text not in STATE["once_seen"]
                STATE["once_seen"].add(text)
            if first:
                self.api_error(anthropic, 429, "rate_limit_error", "Number of requests exceeded",
                               code="rate_limit_exceeded", extra={"retry-after": "0"})
                return
        if fault == "500":
            self.api_error(anthropic, 500, "api_error" if anthropic else "server_error",
                           "Internal server error")
            return
        if fault == "529":
            self.api_error(anthropic, 529, "overloaded_error", "Overloaded")
            return
        delay = STATE["delay_ms"]
        if fault == "SLOW":
            delay = 100
        trickle = int(os.environ.get("FAULT_TRICKLE_MS", "30")) if fault == "TRICKLE" else 0
        words = reply_words(text, fault == "SLOW")
        self.start_stream(anthropic)
        if anthropic:
            self.stream_anthropic(body, words, fault, delay, trickle)
        else:
            self.stream_openai(body, words, fault, delay, trickle)

    def stream_anthropic(self, body, words, fault, delay, trickle):
        def ev(name, obj):
            self.chunk("event: %s\ndata: %s\n\n" % (name, json.dumps(obj)), trickle)

        model = body.get("model", "claude-sonnet-4-5")
        ev("message_start", {"type": "message_start", "message": {
            "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": count_tokens(body), "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}})
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})
        ev("ping", {"type": "ping"})
        if fault == "STALL":
            while True:
                time.sleep(0.5)
                self.chunk("event: ping\ndata: {\"type\": \"ping\"}\n\n")
        for i, w in enumerate(words):
            if fault == "CLOSE" and i == 2:
                self.hard_close()
                return
            if fault == "MALFORMED" and i == 2:
                self.chunk('event: content_block_delta\ndata: {"type": "content_block_delta", '
                           '"index": 0, "delta": {"type": "text_delta", "text": "oops\n\n')
                self.end_chunks()
                return
            if fault == "ERROREVENT" and i == 2:
                ev("error", {"type": "error", "error": {"type": "overloaded_error",
                                                       "message": "Overloaded"}})
                self.end_chunks()
                return
            ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": w}})
            self.sleep_word(delay)
        ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        ev("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": len(words)}})
        ev("message_stop", {"type": "message_stop"})
        self.end_chunks()

    def stream_openai(self, body, words, fault, delay, trickle):
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model = body.get("model", "gpt-4o-mini")

        def data(choices, usage=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "system_fingerprint": "fp_mock", "choices": choices}
            if (body.get("stream_options") or {}).get("include_usage"):
                obj["usage"] = usage
            self.chunk("data: %s\n\n" % json.dumps(obj), trickle)

        data([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
               "logprobs": None, "finish_reason": None}])
        if fault == "STALL":
            while True:
                time.sleep(0.5)
                self.chunk(": keep-alive\n\n")
        for i, w in enumerate(words):
            if fault == "CLOSE" and i == 2:
                self.hard_close()
                return
            if fault == "MALFORMED" and i == 2:
                self.chunk('data: {"id": "%s", "choices": [{"delta": {"content": "oo\n\n' % cid)
                self.end_chunks()
                return
            if fault == "ERROREVENT" and i == 2:
                self.chunk("data: %s\n\n" % json.dumps({"error": {
                    "message": "The server is overloaded", "type": "server_error",
                    "param": None, "code": "server_overloaded"}}))
                self.end_chunks()
                return
            data([{"index": 0, "delta": {"content": w}, "logprobs": None,
                   "finish_reason": None}])
            self.sleep_word(delay)
        data([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = count_tokens(body)
            self.chunk("data: %s\n\n" % json.dumps({
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": "fp_mock", "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(words),
                          "total_tokens": prompt + len(words)}}), trickle)
        self.chunk("data: [DONE]\n\n", trickle)
        self.end_chunks()


def main(argv):
    port = 0
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--api-key":
            STATE["api_key"] = args.pop(0)
        elif a == "--delay-ms":
            STATE["delay_ms"] = int(args.pop(0))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            port = int(a)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
