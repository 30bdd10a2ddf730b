"""Starts the real portal on free ports for black-box tests and benchmarks.

PgCluster: a private PostgreSQL 15 (run as the postgres user when we are root, since
PostgreSQL refuses root). Stack: the services under vap-supervisor, with every port
and URL chosen free. No pytest here, so bench/ can import it too.
"""
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

LEAK_REPORT = re.compile(r"=+\n==\d+==ERROR: LeakSanitizer: detected memory leaks\n.*?"
                         r"\nSUMMARY: AddressSanitizer: [^\n]*\n", re.S)
FRAME = re.compile(r"^\s+#(\d+) 0x[0-9a-f]+ +(?:in (\S+) )?\(?([^)\s]*)", re.M)


def nng_own_leak(report):
    """True for a LeakSanitizer report whose every leak is one of nng 1.5.2's own, both
    reproduced without our code (tests/sanitizer/):
    - a listening socket closed (nng_listener_leak.c, ~1 close in 300): indirect leaks
      (a cycle among nng's objects) allocated inside nng_listen or on nng's threads;
    - a pub socket closed under load (nng_pub_close_leak.c, ~1 run in 40-80): a message
      that nng_sendmsg had accepted -- allocated in vap_pub_send (common/pubsub.c), which
      frees it itself when the send fails.
    And one seen once in a full run (2026-12-07, the gateway stopped after Twilio stream
    tests) but not yet reproduced alone (a sub0/pull0 socket closed while flooded, ~190
    runs): ONE message (a direct 112-byte leak and its body) allocated by nng on its own
    thread, every frame inside libnng. Our receive loops (pubsub.c, the gateway's media
    link) free every message nng_recvmsg hands them; a leak of ours there would leak
    every message, so a direct leak of more than one object still counts.
    A leak with any other frame of ours before nng's (e.g. nng_msg_alloc in rpc.c) counts."""
    leaks = re.split(r"\n(?=(?:Direct|Indirect) leak of )", report)[1:]
    if not leaks:
        return False
    for leak in leaks:
        indirect = leak.startswith("Indirect")
        excused = False
        for _, func, where in FRAME.findall(leak)[1:]:  # #0 is the allocator
            if "libnng.so" in where:
                if func == "nng_listen":
                    excused = indirect
                    break
                continue
            excused = func == "vap_pub_send" or (
                func == "start_thread" and (indirect or " in 1 object(s) " in leak))
            break
        if not excused:
            return False
    return True


def sanitizer_findings(text):
    """text without the reports nng_own_leak() excuses, if it still holds any sanitizer
    mark; else None."""
    text = LEAK_REPORT.sub(lambda m: "" if nng_own_leak(m.group(0)) else m.group(0), text)
    return text if any(mark in text for mark in SANITIZER_MARKS) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class PgCluster:
    """A throwaway PostgreSQL cluster listening on 127.0.0.1 and a private socket.
    Tests run it with fsync off (speed); durable=True keeps fsync on (benchmarks)."""

    def __init__(self, tmpdir=None, durable=False, service_roles=True):
        self.dir = tmpdir or tempfile.mkdtemp(prefix="vap-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = free_port()
        self.password = secrets.token_hex(12)
        os.makedirs(self.sock, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.sock, "postgres")
            os.chmod(self.dir, 0o755)
        subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres",
                                     "-A", "trust", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.sock}'\n"
                       f"fsync = {'on' if durable else 'off'}\n"
                       # as ./portal up's cluster: a new WAL segment is not zero-filled
                       # first (a 16 MB write that stalled commits for ~40 ms)
                       "wal_init_zero = off\n"
                       "max_connections = 200\n")
        self.start()
        sql = (f"CREATE ROLE vap LOGIN PASSWORD '{self.password}';"
               "CREATE DATABASE vap OWNER vap;")
        for stmt in sql.split(";"):
            if stmt:
                self.psql(stmt, db="postgres")
        # Each service logs in as its own role, as ./portal up sets it up.
        self.auth_password = secrets.token_hex(12)
        self.usage_password = secrets.token_hex(12)
        if service_roles:
            self.create_service_roles()

    def create_service_roles(self):
        """Runs deploy/db-roles.sh (idempotent; moves schemas another role owns)."""
        roles = subprocess.run([os.path.join(REPO, "deploy", "db-roles.sh"), self.auth_password,
                                self.usage_password], check=True, capture_output=True,
                               text=True).stdout
        self.psql(None, stdin=roles)

    def psql(self, sql, db="vap", stdin=None, user="postgres", password=None, check=True):
        """Runs SQL (or stdin) in db as user (postgres: over the socket; others: TCP)."""
        if user == "postgres":
            cmd = _as_postgres(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                                "-p", str(self.port), "-U", "postgres", "-d", db])
            env = None
        else:
            cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                   str(self.port), "-U", user, "-d", db]
            env = dict(os.environ, PGPASSWORD=password)
        if sql is not None:
            cmd += ["-c", sql]
        return subprocess.run(cmd, input=stdin, env=env, check=check, capture_output=True,
                              text=True)

    @property
    def url(self):
        return f"postgresql://vap:{self.password}@127.0.0.1:{self.port}/vap"

    @property
    def auth_url(self):
        return f"postgresql://vap_auth:{self.auth_password}@127.0.0.1:{self.port}/vap"

    @property
    def usage_url(self):
        return f"postgresql://vap_usage:{self.usage_password}@127.0.0.1:{self.port}/vap"

    def start(self):
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-l",
                                     os.path.join(self.dir, "log"), "start"]),
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode="fast"):
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-m", mode,
                                     "stop"]), stdout=subprocess.DEVNULL)

    def restart(self):
        self.stop()
        self.start()

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def build_dir():
    return os.environ.get("VAP_BUILD_DIR", os.path.join(REPO, "build-test"))


def voice_cache_dir():
    """Built per-agent language models, shared by every worker of every test stack."""
    path = os.path.join(build_dir(), "voice-cache")
    os.makedirs(path, exist_ok=True)
    return path


STARTED = []  # stacks started for a test session; finish_stacks() scans their logs


def running_stack(voice_workers=0, extra_env=None, worker_timeout=120):
    """For module fixtures (`yield from running_stack(...)`): a stack on a database of its
    own, voice workers waited for, registered in STARTED, all stopped afterwards."""
    cluster = PgCluster()
    s = Stack(cluster, voice_workers=voice_workers, extra_env=extra_env).start()
    STARTED.append(s)
    try:
        if voice_workers:
            s.wait_voice_workers(voice_workers, timeout=worker_timeout)
        yield s
    finally:
        s.stop()
        cluster.destroy()


@contextlib.contextmanager
def own_stack(voice_workers=0, extra_env=None, worker_timeout=120):
    """For one test (`with own_stack(...) as s:`): as running_stack; s.pg is its
    database."""
    yield from running_stack(voice_workers, extra_env, worker_timeout)


def finish_stacks(stacks, session):
    """At the end of a pytest session: stops every stack, fails the session if any
    service log holds a sanitizer report (and keeps the logs then, or with
    VAP_KEEP_LOGS), else removes them."""
    reports = []
    for s in stacks:
        s.stop()
        reports += s.sanitizer_reports()
        if not reports and not os.environ.get("VAP_KEEP_LOGS"):
            s.cleanup()
    if reports:
        print("\nSANITIZER REPORTS IN SERVICE LOGS:\n" + "\n".join(reports), file=sys.stderr)
        session.exitstatus = 1


# The nng URLs of the internal links (use_link_tls switches them all to tls+tcp://).
LINK_URL_KEYS = ("AUTH_RPC_URL", "AUTH_EVENTS_URL", "USAGE_RPC_URL", "GW_VOICE_HEARTBEAT_URL",
                 "VOICE_HEARTBEAT_URLS", "VOICE_MEDIA_URL", "GW_VOICE_MEDIA_URL")


class Stack:
    """The portal's services under vap-supervisor, on free ports."""

    SERVICES = ("auth", "usage", "gateway")

    def __init__(self, pg, extra_env=None, services=SERVICES, bin_dir=None, voice_workers=0):
        self.pg = pg
        self.bin = bin_dir or os.path.join(build_dir(), "bin")
        self.dir = tempfile.mkdtemp(prefix="vap-stack-")
        self.logs = os.path.join(self.dir, "logs")
        self.run = os.path.join(self.dir, "run")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        heartbeat = f"tcp://127.0.0.1:{free_port()}"
        self.env = dict(os.environ)
        self.env.update({
            "PORT": str(self.port),
            "BIND_ADDR": "127.0.0.1",
            "AUTH_RPC_URL": f"tcp://127.0.0.1:{free_port()}",
            "AUTH_EVENTS_URL": f"tcp://127.0.0.1:{free_port()}",
            "USAGE_RPC_URL": f"tcp://127.0.0.1:{free_port()}",
            "GW_VOICE_HEARTBEAT_URL": heartbeat,
            "VOICE_HEARTBEAT_URLS": heartbeat,
            "VOICE_MEDIA_URL": "tcp://127.0.0.1:0",
            "VOICE_CACHE_DIR": voice_cache_dir(),
            "DATABASE_URL": pg.url,
            # least privilege: each service's own role (deploy/db-roles.sh)
            "DATABASE_URL_AUTH": getattr(pg, "auth_url", pg.url),
            "DATABASE_URL_USAGE": getattr(pg, "usage_url", pg.url),
            "SECRET_KEY": secrets.token_hex(32),
            "WEB_DIR": os.path.join(REPO, "web"),
            "AGENTS_DIR": os.path.join(REPO, "config", "agents"),
            "CORS_ORIGINS": "http://allowed.example",
            "LOG_LEVEL": "info",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        self.env.update(extra_env or {})
        self.services = tuple(services) + tuple(f"voice{i + 1}" for i in range(voice_workers))
        self.proc = None
        self.extra = []

    def use_link_tls(self):
        """Before start(): every internal link on mutual TLS (tls+tcp:// URLs), with a CA
        and a certificate made by deploy/link-certs.sh in the stack's directory."""
        d = os.path.join(self.dir, "link-tls")
        subprocess.run([os.path.join(REPO, "deploy", "link-certs.sh"), d, "link"], check=True,
                       capture_output=True)
        for key in LINK_URL_KEYS:
            self.env[key] = self.env.get(key, "tcp://127.0.0.1:0").replace("tcp://",
                                                                           "tls+tcp://")
        self.env.update(LINK_TLS_CA_FILE=os.path.join(d, "ca.crt"),
                        LINK_TLS_CERT_FILE=os.path.join(d, "link.pem"))
        return self

    def start(self, timeout=30):
        specs = [f"{name}:{self.bin}/vap-{name.rstrip('0123456789')}" for name in self.services]
        self.proc = subprocess.Popen(
            [f"{self.bin}/vap-supervisor", "--log-dir", self.logs, "--run-dir", self.run] + specs,
            env=self.env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "supervisor.log"), "ab"))
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30, url=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen((url or self.url) + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError("stack not ready; logs:\n" + self.tails())

    def metric(self, name, url=None):
        """The value of an unlabelled gauge on the gateway's /metrics."""
        with urllib.request.urlopen((url or self.url) + "/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def wait_voice_workers(self, n, timeout=60, url=None):
        """Waits until the gateway sees n live voice workers (they load models first)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if (self.metric("vap_voice_workers_live", url) or 0) >= n:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{n} voice workers not live; logs:\n" + self.tails())

    def pid(self, name):
        with open(os.path.join(self.run, f"{name}.pid")) as f:
            return int(f.read().strip())

    def kill(self, name, sig=signal.SIGKILL):
        os.kill(self.pid(name), sig)

    def log_text(self, name):
        try:
            with open(os.path.join(self.logs, f"{name}.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def tails(self, lines=15):
        out = []
        for name in self.services:
            text = self.log_text(name).splitlines()[-lines:]
            out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)

    def sanitizer_reports(self):
        found = []
        names = list(self.services) + [f"extra{i}" for i in range(len(self.extra))]
        texts = [(name, self.log_text(name)) for name in names]
        try:  # the supervisor is a sanitized binary too; its stderr goes here
            with open(os.path.join(self.dir, "supervisor.log"), errors="replace") as f:
                texts.append(("supervisor", f.read()))
        except FileNotFoundError:
            pass
        for name, text in texts:
            text = sanitizer_findings(text)
            if text:
                found.append(f"{name}:\n{text[-4000:]}")
        return found

    def start_extra_gateway(self):
        """A second gateway on its own port, sharing auth and the secret."""
        port = free_port()
        env = dict(self.env, PORT=str(port),
                   GW_VOICE_HEARTBEAT_URL=f"tcp://127.0.0.1:{free_port()}")
        index = len(self.extra)
        log = open(os.path.join(self.logs, f"extra{index}.log"), "ab")
        proc = subprocess.Popen([f"{self.bin}/vap-gateway"], env=env, stdout=log, stderr=log)
        self.extra.append(proc)
        url = f"http://127.0.0.1:{port}"
        self.wait_ready(url=url)
        return url

    def cleanup(self):
        """Removes the logs and pid files (after sanitizer_reports() has read them)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self):
        for proc in self.extra:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            # Still running: a voice worker drains, waiting out a dropped session's resume
            # window. A second SIGTERM tells it to stop now (cleanly, so its sanitizer
            # report is still written) rather than be SIGKILLed at the stop timeout.
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode if self.proc else None
