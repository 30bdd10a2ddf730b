"""Network namespaces as separate hosts on one machine, for multi-host tests.

Net(["db", "gw", ...]) builds, per name, a namespace with one interface (eth0) on a
private /24 and plugs it into a bridge that lives in a namespace of its own (the
"switch"); the test process reaches the hosts through one veth from the root namespace
(the only thing added there, removed again by down()). cut(name) pulls a host's cable
(its switch port goes down), restore(name) plugs it back. Names carry a random tag, so
runs never collide, and down() removes everything, also after a half-built up().
No pytest here.
"""
import ipaddress
import os
import random
import secrets
import subprocess

IP = "ip"


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be created here (not root, no CAP_NET_ADMIN, no ip tool)."""


def _ip(*args, check=True):
    out = subprocess.run([IP, *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


def _used_networks():
    """Every IPv4 network the root namespace already routes or has an address in."""
    nets = []
    out = _ip("-4", "route", "show", "table", "all", check=False).stdout
    out += _ip("-4", "-o", "addr", "show", check=False).stdout
    for word in out.split():
        try:
            if "/" in word or word.count(".") == 3:
                nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    return nets


def _free_subnet():
    used = _used_networks()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet")


class Net:
    def __init__(self, hosts):
        self.tag = secrets.token_hex(3)
        self.subnet = _free_subnet()
        addrs = list(self.subnet.hosts())
        self.root_addr = str(addrs[0])
        self.hosts = {name: str(addrs[i + 1]) for i, name in enumerate(hosts)}
        self.core = f"vap-{self.tag}-sw"
        self.root_if = f"vap{self.tag}"  # <= 15 characters
        self.created = []

    def ns(self, name):
        return f"vap-{self.tag}-{name}"

    def addr(self, name):
        return self.hosts[name]

    def prefix(self, name):
        """The command prefix that runs a program on host name."""
        return [IP, "netns", "exec", self.ns(name)]

    def _add_ns(self, ns):
        out = _ip("netns", "add", ns, check=False)
        if out.returncode != 0:
            raise NetnsUnavailable(f"'ip netns add' failed: {out.stderr.strip()}")
        self.created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def up(self):
        try:
            self._add_ns(self.core)
            _ip("-n", self.core, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.core, "link", "set", "br0", "up")
            for name, addr in self.hosts.items():
                ns = self.ns(name)
                self._add_ns(ns)
                _ip("-n", self.core, "link", "add", f"p-{name}", "type", "veth", "peer", "name",
                    "eth0", "netns", ns)
                _ip("-n", self.core, "link", "set", f"p-{name}", "master", "br0", "up")
                _ip("-n", ns, "addr", "add", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("link", "add", self.root_if, "type", "veth", "peer", "name", "p-root", "netns",
                self.core)
            self.created.append(self.root_if)
            _ip("-n", self.core, "link", "set", "p-root", "master", "br0", "up")
            _ip("addr", "add", f"{self.root_addr}/{self.subnet.prefixlen}", "dev", self.root_if)
            _ip("link", "set", self.root_if, "up")
        except FileNotFoundError as err:
            self.down()
            raise NetnsUnavailable(f"no ip tool: {err}") from err
        except BaseException:
            self.down()
            raise
        return self

    def cut(self, name):
        """Pulls host name's cable: its switch port goes down (no packet in or out)."""
        _ip("-n", self.core, "link", "set", f"p-{name}", "down")

    def restore(self, name):
        _ip("-n", self.core, "link", "set", f"p-{name}", "up")

    def down(self):
        # Deleting a namespace frees its interfaces only once its last user is gone;
        # the root end is deleted explicitly so nothing stays behind in the root namespace.
        if self.root_if in self.created:
            _ip("link", "del", self.root_if, check=False)
        for ns in reversed([n for n in self.created if n != self.root_if]):
            _ip("netns", "del", ns, check=False)
        self.created = []


def pids_in(ns_name):
    """Pids of the processes still running in a namespace (for cleanup checks)."""
    out = _ip("netns", "pids", ns_name, check=False)
    return [int(p) for p in out.stdout.split()] if out.returncode == 0 else []


def available():
    """None when namespaces can be made here, else why not."""
    probe = f"vap-probe-{os.getpid()}-{secrets.token_hex(2)}"
    try:
        out = _ip("netns", "add", probe, check=False)
    except FileNotFoundError as err:
        return f"no ip tool: {err}"
    if out.returncode != 0:
        return f"'ip netns add' failed: {out.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None
