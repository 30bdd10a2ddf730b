"""Offline validation of the container and cluster files: deploy/Dockerfile,
docker-compose.yml, deploy/k8s/ and the entrypoint scripts.

No Docker engine or cluster is needed: `docker-compose config` renders the compose
file, yamllint checks every YAML file, python3-yaml parses the manifests, and every
binary, port and environment variable the files name is checked against the build (the
services' config tables `{"NAME", VAP_CONFIG_...}`, CMake's add_executable targets, the
`portal` script). Whether a service listens on or dials a URL is read from its sources,
so a listener must bind 0.0.0.0 and a dialer must name the service that listens.

Needs the Debian packages docker-compose, yamllint and python3-yaml; a missing one is a
failure naming the package, never a silent skip. Needs no build of the project.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
COMPOSE = os.path.join(ROOT, "docker-compose.yml")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
ENTRYPOINT = os.path.join(DEPLOY, "entrypoint.sh")
HEALTHCHECK = os.path.join(DEPLOY, "healthcheck.sh")

SERVICES = ("gateway", "auth", "usage", "voice")  # services/<name>/, binary vap-<name>
# A dialled variable whose listener has another name; otherwise both have the same name.
DIAL_TO_LISTEN = {"VOICE_HEARTBEAT_URLS": "GW_VOICE_HEARTBEAT_URL"}
# Calls that listen on / dial the URL passed to them (common/rpc.c, common/pubsub.c,
# common/link.c and the services' own wrappers around those and nng).
LISTEN_CALLS = ("vap_rpc_server_start", "vap_pub_open", "vap_sub_open_listen", "nng_listen",
                "vap_link_listen", "gw_voice_start", "media_listen")
DIAL_CALLS = ("vap_rpc_client_open", "vap_sub_open", "vap_pub_open_dial", "nng_dial",
              "vap_link_dial", "gw_revocations_start", "usage_sync_start")
WILDCARD = "0.0.0.0"


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def need_tool(name, package):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found: install the Debian package {package} "
                    f"(apt-get install -y {package}); it belongs in the portal's APT_PACKAGES")
    return path


# ---------------------------------------------------------------------------------------
# What the build defines


def c_sources(service):
    return sorted(glob.glob(os.path.join(ROOT, "services", service, "**", "*.c"),
                            recursive=True))


CONFIG_ITEM = re.compile(
    r'\{\s*"([A-Z][A-Z0-9_]*)"\s*,\s*VAP_CONFIG_(STRING|INT)\s*,\s*'
    r'("(?:[^"\\]|\\.)*"|NULL|[A-Za-z_][A-Za-z0-9_]*)\s*,'
    r'[^,]*,[^,]*,[^,]*,\s*&([A-Za-z_][A-Za-z0-9_.>-]*)')


COMMON_GETENV = re.compile(r'getenv\("([A-Z][A-Z0-9_]*)"\)')


def config_table(service):
    """{NAME: (default or None, target field's last component)} from the service's C
    sources, plus the settings every service reads through common/ (getenv("NAME") in
    common/*.c, e.g. METRICS_ADDR), which have no default."""
    items = {}
    for path in glob.glob(os.path.join(ROOT, "common", "*.c")):
        for name in COMMON_GETENV.findall(read(path)):
            if name != "VAP_SERVICE_NAME":  # set by vap-supervisor, not a setting
                items[name] = (None, name.lower())
    for path in c_sources(service):
        for m in CONFIG_ITEM.finditer(read(path)):
            name, _, default, target = m.groups()
            value = default[1:-1] if default.startswith('"') else None
            items[name] = (value, re.split(r"\.|->", target)[-1])
    return items


@pytest.fixture(scope="module")
def tables():
    t = {svc: config_table(svc) for svc in SERVICES}
    for svc in SERVICES:
        assert t[svc], f"no config table found in services/{svc}/*.c"
    return t


@pytest.fixture(scope="module")
def all_config_vars(tables):
    return set().union(*(set(t) for t in tables.values()))


@pytest.fixture(scope="module")
def portal_vars():
    text = read(os.path.join(ROOT, "portal"))
    return set(re.findall(r"\bexport\s+([A-Z][A-Z0-9_]*)", text))


@pytest.fixture(scope="module")
def built_targets():
    targets = set()
    for pattern in ("CMakeLists.txt", "**/CMakeLists.txt", "**/*.cmake"):
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            rel = os.path.relpath(path, ROOT)
            if rel.startswith(("build", ".portal", "node_modules")):
                continue
            targets.update(re.findall(r"add_executable\(\s*([A-Za-z0-9_.+-]+)", read(path)))
    return targets


def calls(text):
    """(function, argument text) for every call in C source text, nested ones included."""
    for m in re.finditer(r"\b([a-z_][a-z_0-9]*)\s*\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield m.group(1), text[m.end():i - 1]


def url_role(service, var, tables):
    """'listen' or 'dial': how the service uses the URL in variable var, from its sources
    (the config table names the field; the field is passed to a listen or dial call)."""
    field = tables[service][var][1]
    listen = dial = False
    for path in c_sources(service):
        text = read(path)
        for fn, args in calls(text):
            if not re.search(r"(?:\.|->)" + re.escape(field) + r"\b", args):
                continue
            listen |= fn in LISTEN_CALLS
            dial |= fn in DIAL_CALLS
    assert listen != dial, (f"{service}: cannot tell whether {var} (field {field}) is "
                            f"listened or dialled (listen={listen}, dial={dial}); update "
                            f"LISTEN_CALLS/DIAL_CALLS in {__file__}")
    return "listen" if listen else "dial"


URL_VARS = re.compile(r"_URLS?$")


def nng_var(tables, service, var):
    """Whether var is one of the service's nng addresses (its default is a tcp:// URL)."""
    default = tables[service].get(var, (None, None))[0]
    return bool(URL_VARS.search(var) and default and default.startswith("tcp://"))


def split_url(url):
    m = re.fullmatch(r"tcp://([^:/]*):(\d+)", url)
    assert m, f"not a tcp://host:port URL: {url!r}"
    return m.group(1), int(m.group(2))


def default_port(tables, var):
    for t in tables.values():
        if var in t and t[var][0] and t[var][0].startswith("tcp://"):
            return split_url(t[var][0].split(",")[0])[1]
    return None


# ---------------------------------------------------------------------------------------
# YAML


def yaml_files():
    r = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode == 0:
        names = r.stdout.split()
    else:  # not a git checkout: the files this change owns
        names = ["docker-compose.yml"] + [os.path.relpath(p, ROOT) for p in
                                          glob.glob(os.path.join(DEPLOY, "**", "*.y*ml"),
                                                    recursive=True)]
    return sorted(p for p in names if p.endswith((".yml", ".yaml")))


def test_yamllint_passes_on_all_yaml():
    yamllint = need_tool("yamllint", "yamllint")
    files = yaml_files()
    assert "docker-compose.yml" in files
    assert any(f.startswith("deploy/k8s/") for f in files)
    r = subprocess.run([yamllint, "--strict", "-c", os.path.join(ROOT, ".yamllint"), *files],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"yamllint:\n{r.stdout}{r.stderr}"


# ---------------------------------------------------------------------------------------
# docker-compose


COMPOSE_SECRETS = {"SECRET_KEY": "0" * 64, "POSTGRES_PASSWORD": "pw",
                   "AUTH_DB_PASSWORD": "apw", "USAGE_DB_PASSWORD": "upw"}


def compose_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in (*COMPOSE_SECRETS, "CLAUDE_API_KEY")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def compose():
    exe = need_tool("docker-compose", "docker-compose")
    r = subprocess.run([exe, "-f", COMPOSE, "config"], cwd=ROOT, capture_output=True,
                       text=True, env=compose_env(**COMPOSE_SECRETS))
    assert r.returncode == 0, f"docker-compose config failed:\n{r.stderr}"
    return yaml.safe_load(r.stdout)


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def test_compose_config_renders(compose):
    assert set(compose["services"]) == {"postgres", *SERVICES}


@pytest.mark.parametrize("missing", sorted(COMPOSE_SECRETS))
def test_compose_requires_secrets_from_environment(missing):
    exe = need_tool("docker-compose", "docker-compose")
    env = compose_env(**COMPOSE_SECRETS)
    del env[missing]
    r = subprocess.run([exe, "-f", COMPOSE, "config"], cwd=ROOT, capture_output=True,
                       text=True, env=env)
    assert r.returncode != 0 and missing in r.stderr, r.stderr


def test_compose_postgres(compose):
    pg = compose["services"]["postgres"]
    assert pg["image"] == "postgres:15"
    assert any(str(v).split(":")[1] == "/var/lib/postgresql/data" if isinstance(v, str)
               else v.get("target") == "/var/lib/postgresql/data" for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert "pgdata" in compose.get("volumes", {})


def test_compose_depends_on_health(compose):
    s = compose["services"]
    assert s["auth"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert s["usage"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert s["gateway"]["depends_on"]["auth"]["condition"] == "service_healthy"
    assert s["gateway"]["depends_on"]["usage"]["condition"] == "service_healthy"
    for name in SERVICES:
        assert s[name].get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        for dep, cond in s[name].get("depends_on", {}).items():
            assert dep in s and cond["condition"] in ("service_healthy", "service_started")


def test_compose_voice_scales(compose):
    """`docker-compose up --scale voice=4` needs no fixed name and no fixed host port."""
    voice = compose["services"]["voice"]
    assert "container_name" not in voice
    assert not voice.get("ports"), "voice must not publish host ports (it is scaled)"
    assert "hostname" not in voice
    env = env_of(voice)
    # Each replica announces its own address: a fixed VOICE_ADVERTISE_URL/HOST would
    # make all of them announce the same one.
    assert "VOICE_ADVERTISE_URL" not in env and "VOICE_ADVERTISE_HOST" not in env
    for svc in compose["services"].values():
        assert "container_name" not in svc


def test_compose_secrets(compose):
    s = compose["services"]
    assert env_of(s["gateway"])["SECRET_KEY"] == "0" * 64
    assert env_of(s["auth"])["SECRET_KEY"] == "0" * 64
    # each service logs in as its own role (deploy/db-roles.sh)
    assert "//vap_auth:apw@postgres:" in env_of(s["auth"])["DATABASE_URL"]
    assert "//vap_usage:upw@postgres:" in env_of(s["usage"])["DATABASE_URL"]
    pg = s["postgres"]
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in pg["volumes"]]
    assert any("postgres-init.sh" in m and "/docker-entrypoint-initdb.d/" in m for m in mounts)
    assert any("db-roles.sh" in m for m in mounts)
    assert env_of(s["voice"]).get("CLAUDE_API_KEY", "") == ""  # optional


def test_compose_env_vars_exist(compose, tables):
    for name in SERVICES:
        for var in env_of(compose["services"][name]):
            assert var in tables[name], (f"compose service {name}: {var} is not in "
                                         f"services/{name}'s config table")


def test_compose_commands_are_built_binaries(compose, built_targets):
    for name in SERVICES:
        cmd = compose["services"][name]["command"]
        cmd = cmd if isinstance(cmd, list) else cmd.split()
        assert cmd[0] == name, f"{name}: command {cmd}"
        assert f"vap-{name}" in built_targets


def test_compose_urls_listen_and_dial(compose, tables):
    services = compose["services"]
    listeners = {}  # var -> (service, port)
    for name in SERVICES:
        for var, url in env_of(services[name]).items():
            if nng_var(tables, name, var):
                if url_role(name, var, tables) == "listen":
                    host, port = split_url(url)
                    assert host == WILDCARD, f"{name} listens on {var}={url}: bind {WILDCARD}"
                    listeners[var] = (name, port)
    for name in SERVICES:
        for var, url in env_of(services[name]).items():
            if not nng_var(tables, name, var):
                continue
            if url_role(name, var, tables) != "dial":
                continue
            target_var = DIAL_TO_LISTEN.get(var, var)
            assert target_var in listeners, f"{name} dials {var} but nobody listens on it"
            for one in url.split(","):
                host, port = split_url(one)
                assert (host, port) == listeners[target_var], (
                    f"{name}: {var}={one} must dial the service listening on {target_var} "
                    f"({listeners[target_var]})")
    # Listeners keep the services' default ports (docs, portal and code agree on them).
    for var, (name, port) in listeners.items():
        want = default_port(tables, var)
        if want:
            assert port == want, f"{name}: {var} port {port}, default {want}"
    # Both media links listen: the gateway's on a kernel-picked port, announced by
    # address (the entrypoint fills GW_VOICE_ADVERTISE_HOST); the voice one on a fixed
    # container port, announced by the entrypoint as VOICE_ADVERTISE_URL.
    assert listeners["GW_VOICE_MEDIA_URL"] == ("gateway", 0)
    assert listeners["VOICE_MEDIA_URL"][0] == "voice"


def test_compose_gateway_port(compose, tables):
    gw = compose["services"]["gateway"]
    port = int(env_of(gw).get("PORT", tables["gateway"]["PORT"][0]))
    assert port == int(tables["gateway"]["PORT"][0]) == 8000
    published = [p for p in gw["ports"]]
    targets = [int(p["target"]) if isinstance(p, dict) else int(str(p).split(":")[-1])
               for p in published]
    assert targets == [port]


# ---------------------------------------------------------------------------------------
# Dockerfile and entrypoint


def dockerfile_instructions():
    text = re.sub(r"\\\n", " ", read(DOCKERFILE))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def apt_installs(run_args):
    m = re.search(r"apt-get install ([^&]*)", run_args)
    return [w for w in m.group(1).split() if not w.startswith("-")] if m else []


def portal_array(name):
    text = read(os.path.join(ROOT, "portal"))
    m = re.search(name + r"=\(([^)]*)\)", text)
    assert m, f"portal: {name} not found"
    return set(m.group(1).split())


def test_dockerfile_stages_and_user():
    ins = dockerfile_instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2 and all(f.split()[0] == "debian:12" for f in froms), froms
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as root"
    assert any(word == "HEALTHCHECK" for word, _ in ins)
    assert any(word == "ENTRYPOINT" for word, _ in ins)
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "-DCMAKE_BUILD_TYPE=RelWithDebInfo" in runs and "-DVAP_TESTS=OFF" in runs
    assert "scripts/install-web-assets.sh" in runs
    assert os.path.isfile(os.path.join(ROOT, "scripts", "install-web-assets.sh"))


def test_dockerfile_packages():
    ins = dockerfile_instructions()
    stages, current = [], None
    for word, rest in ins:
        if word == "FROM":
            current = []
            stages.append(current)
        elif word == "RUN" and current is not None:
            current += apt_installs(rest)
    build, runtime = stages[0], stages[-1]
    allowed = portal_array("APT_PACKAGES") | portal_array("NODE_PACKAGES") | {"ca-certificates"}
    for pkg in build:
        assert pkg in allowed, f"build stage installs {pkg}, not in the portal's APT_PACKAGES"
    for pkg in runtime:
        assert not pkg.endswith("-dev"), f"runtime stage installs {pkg}"
    for lib in ("libcivetweb1", "libnng1", "libprotobuf-c1", "libpq5", "libjansson4",
                "libsodium23", "libcurl4", "libopus0", "libspeexdsp1", "libpocketsphinx3",
                "libsphinxbase3", "pocketsphinx-en-us", "libflite1", "libespeak-ng1"):
        assert lib in runtime, f"runtime stage lacks {lib}"
    apt_cache = shutil.which("apt-cache")
    if apt_cache:  # Debian 12 hosts: every name must be a real package
        r = subprocess.run([apt_cache, "show", "--no-all-versions", *build, *runtime],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"unknown Debian packages:\n{r.stderr}"


def test_dockerfile_binaries_env_and_ports(built_targets, all_config_vars, compose, tables):
    ins = dockerfile_instructions()
    text = " ".join(rest for word, rest in ins)
    copied = set(re.findall(r"/build/bin/([A-Za-z0-9_.-]+)", text))
    built = set(re.findall(r"--target\s+((?:vap-[a-z]+\s*)+)", text)[0].split())
    assert copied == built == {f"vap-{s}" for s in SERVICES} | {"vap-talk"}, (copied, built)
    assert copied <= built_targets
    for word, rest in ins:
        if word == "ENV":
            for name in re.findall(r"([A-Z][A-Z0-9_]*)=", rest):
                assert name in all_config_vars, f"Dockerfile ENV {name}: no service reads it"
    exposed = {int(p) for word, rest in ins if word == "EXPOSE" for p in rest.split()}
    known = {int(tables["gateway"]["PORT"][0])}
    for t in tables.values():
        for var, (default, _) in t.items():
            if default and default.startswith("tcp://") and URL_VARS.search(var):
                known.add(split_url(default)[1])
    known.add(split_url(env_of(compose["services"]["voice"])["VOICE_MEDIA_URL"])[1])
    known.discard(0)
    assert exposed == known, f"EXPOSE {sorted(exposed)}, the build's ports {sorted(known)}"


def test_scripts_name_only_real_things(all_config_vars):
    for path in (ENTRYPOINT, HEALTHCHECK):
        text = read(path)
        r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        for name in set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - {"BASH_REMATCH"}:
            assert name in all_config_vars, f"{os.path.basename(path)}: ${name} is no setting"
        for bin_name in re.findall(r"vap-(gateway|auth|usage|voice)\b", text):
            assert bin_name in SERVICES
    assert re.search(r"gateway \| auth \| usage \| voice\)", read(ENTRYPOINT))


def run_entrypoint(binary, env, hostname_output="10.9.8.7 fe80::1"):
    """Runs the entrypoint with a fake vap-<binary> (env) and a fake hostname command;
    returns the environment the service would start with."""
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(shutil.which("env"), os.path.join(tmp, binary))
        fake = os.path.join(tmp, "hostname")
        with open(fake, "w") as f:
            f.write(f"#!/bin/sh\necho '{hostname_output}'\n")
        os.chmod(fake, 0o755)
        base = {"PATH": tmp + ":/usr/bin:/bin"}
        r = subprocess.run(["bash", ENTRYPOINT, os.path.join(tmp, binary)], env={**base, **env},
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def test_entrypoint_announces_container_address():
    env = run_entrypoint("vap-voice", {"VOICE_MEDIA_URL": "tcp://0.0.0.0:7400"})
    assert env["VOICE_ADVERTISE_URL"] == "tcp://10.9.8.7:7400"
    env = run_entrypoint("vap-voice", {"VOICE_MEDIA_URL": "tcp://0.0.0.0:0"})
    assert env["VOICE_ADVERTISE_HOST"] == "10.9.8.7" and "VOICE_ADVERTISE_URL" not in env
    env = run_entrypoint("vap-voice", {"VOICE_MEDIA_URL": "tcp://0.0.0.0:7400",
                                       "VOICE_ADVERTISE_URL": "tcp://w1:9"})
    assert env["VOICE_ADVERTISE_URL"] == "tcp://w1:9"
    env = run_entrypoint("vap-gateway", {"GW_VOICE_MEDIA_URL": "tcp://0.0.0.0:0"})
    assert env["GW_VOICE_ADVERTISE_HOST"] == "10.9.8.7"
    env = run_entrypoint("vap-gateway", {"GW_VOICE_MEDIA_URL": "tcp://0.0.0.0:0",
                                         "GW_VOICE_ADVERTISE_HOST": "gw"})
    assert env["GW_VOICE_ADVERTISE_HOST"] == "gw"
    env = run_entrypoint("vap-voice", {"VOICE_MEDIA_URL": "tcp://127.0.0.1:0"})
    assert "VOICE_ADVERTISE_HOST" not in env  # not a wildcard: left alone


# ---------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    assert "kind" in doc and "apiVersion" in doc, f"{path}: {doc}"
                    doc["_file"] = os.path.basename(path)
                    docs.append(doc)
    return docs


def of_kind(manifests, kind):
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def component(d):
    return d["metadata"]["labels"]["app.kubernetes.io/component"]


@pytest.fixture(scope="module")
def deployments(manifests):
    deps = {component(d): d for d in of_kind(manifests, "Deployment").values()}
    assert set(deps) == set(SERVICES)
    return deps


def container(dep):
    cs = dep["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


def k8s_env(c):
    return {e["name"]: e for e in c.get("env", [])}


def k8s_value(c, name):
    """An env value with $(VAR) references to fieldRef helpers resolved to a marker."""
    env = k8s_env(c)
    value = env[name].get("value", "")
    return re.sub(r"\$\(([A-Z_]+)\)", lambda m: "POD-" + m.group(1), value)


def test_kustomization_lists_every_manifest(manifests):
    k = yaml.safe_load(read(os.path.join(K8S, "kustomization.yaml")))
    files = {d["_file"] for d in manifests} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(k["resources"]) == files
    assert "secret.example.yaml" not in k["resources"]  # never overwrite real secrets


def test_k8s_deployments_secure(deployments, manifests):
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        c = container(dep)
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert c["args"] == [name], name
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v
                   for k, v in dep["spec"]["selector"]["matchLabels"].items()), name
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount_name in mounts.values():
            assert mount_name in volumes, f"{name}: volume {mount_name} not declared"
    voice = deployments["voice"]
    vc = container(voice)
    cache = k8s_env(vc)["VOICE_CACHE_DIR"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in vc["volumeMounts"]}
    volumes = {v["name"]: v for v in voice["spec"]["template"]["spec"]["volumes"]}
    assert cache in mounts and "emptyDir" in volumes[mounts[cache]]


def test_k8s_probes(deployments):
    gw = container(deployments["gateway"])
    ports = {p["name"]: p["containerPort"] for p in gw["ports"]}
    assert gw["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gw["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        port = gw[probe]["httpGet"]["port"]
        assert ports.get(port, port) == int(k8s_env(gw)["PORT"]["value"]) == 8000
    for name in ("auth", "usage", "voice"):
        c = container(deployments[name])
        cports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            p = c[probe]
            assert "tcpSocket" in p or "exec" in p, f"{name}: {probe}"
            if "tcpSocket" in p:
                port = p["tcpSocket"]["port"]
                assert port in cports or port in cports.values(), f"{name}: {probe} port"


def test_k8s_secret_and_configmap_refs(deployments, manifests):
    secret = of_kind(manifests, "Secret")["vap-secrets"]
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    assert {"SECRET_KEY", "AUTH_DATABASE_URL", "USAGE_DATABASE_URL", "CLAUDE_API_KEY"} <= keys
    needs = {"gateway": {"SECRET_KEY"}, "auth": {"SECRET_KEY", "DATABASE_URL"},
             "usage": {"DATABASE_URL"}, "voice": {"CLAUDE_API_KEY"}}
    db_key = {"auth": "AUTH_DATABASE_URL", "usage": "USAGE_DATABASE_URL"}
    for name, dep in deployments.items():
        refs = {}
        for e in container(dep).get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "vap-secrets" and ref["key"] in keys, (name, ref)
                refs[e["name"]] = ref
        assert needs[name] <= set(refs), f"{name}: secrets {set(refs)}"
        if name in db_key:  # each service's own database role
            assert refs["DATABASE_URL"]["key"] == db_key[name], (name, refs["DATABASE_URL"])
        for e in container(dep).get("env", []):
            if e["name"] in {"SECRET_KEY", "DATABASE_URL", "CLAUDE_API_KEY", "LLM_API_KEY"}:
                assert "value" not in e, f"{name}: {e['name']} in plain text, not a Secret"
    assert deployments["voice"] and refs_optional(deployments["voice"], "CLAUDE_API_KEY")

    cm = of_kind(manifests, "ConfigMap")["vap-agents"]
    agents = {os.path.basename(p): read(p)
              for p in glob.glob(os.path.join(ROOT, "config", "agents", "*.json"))}
    assert cm["data"] == agents, ("deploy/k8s/configmap-agents.yaml differs from "
                                  "config/agents; run deploy/k8s/gen-agents-configmap.py")
    for name in ("gateway", "voice"):
        dep = deployments[name]
        c = container(dep)
        agents_dir = k8s_env(c)["AGENTS_DIR"]["value"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert vols[mounts[agents_dir]]["configMap"]["name"] == "vap-agents", name


def refs_optional(dep, var):
    return k8s_env(container(dep))[var]["valueFrom"]["secretKeyRef"].get("optional") is True


def test_k8s_env_vars_exist(deployments, tables):
    for name, dep in deployments.items():
        env = k8s_env(container(dep))
        referenced = set()
        for e in env.values():
            referenced.update(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", e.get("value", "")))
        for var, e in env.items():
            if var in tables[name]:
                continue
            # A downward-API helper used only to build another value ($(POD_IP)).
            assert "fieldRef" in e.get("valueFrom", {}) and var in referenced, (
                f"k8s {name}: {var} is not in services/{name}'s config table")
        for var in referenced:
            assert "fieldRef" in env[var].get("valueFrom", {}), f"{name}: $({var})"


def test_k8s_urls_listen_and_dial(deployments, manifests, tables):
    services = of_kind(manifests, "Service")
    listeners = {}  # var -> (component, containerPort)
    for name, dep in deployments.items():
        c = container(dep)
        cports = {p["containerPort"] for p in c.get("ports", [])}
        for var in k8s_env(c):
            if nng_var(tables, name, var):
                if url_role(name, var, tables) == "listen":
                    host, port = split_url(k8s_value(c, var))
                    assert host == WILDCARD, f"{name} listens on {var}: bind {WILDCARD}"
                    assert port == 0 or port in cports, f"{name}: {var} port not declared"
                    listeners[var] = (name, port)
    for name, dep in deployments.items():
        c = container(dep)
        for var in k8s_env(c):
            if not nng_var(tables, name, var):
                continue
            if url_role(name, var, tables) != "dial":
                continue
            target_var = DIAL_TO_LISTEN.get(var, var)
            assert target_var in listeners, f"{name} dials {var}; nobody listens on it"
            lcomp, lport = listeners[target_var]
            for one in k8s_value(c, var).split(","):
                host, port = split_url(one)
                assert host in services, f"{name}: {var} dials {host}, not a Service"
                svc = services[host]
                assert svc["spec"]["selector"]["app.kubernetes.io/component"] == lcomp, (
                    f"{name}: {var} dials Service {host}, which does not select {lcomp}")
                sports = {p["port"]: p.get("targetPort", p["port"])
                          for p in svc["spec"]["ports"]}
                assert port in sports, f"{name}: {var} port {port} not on Service {host}"
                target = sports[port]
                lc = container(deployments[lcomp])
                named = {p["name"]: p["containerPort"] for p in lc["ports"] if "name" in p}
                assert named.get(target, target) == lport, (
                    f"Service {host}:{port} reaches {target}, {lcomp} listens {lport}")
    for var, (name, port) in listeners.items():
        want = default_port(tables, var)
        if want:
            assert port == want, f"k8s {name}: {var} port {port}, default {want}"
    # Each pod announces its own address for the media links.
    gw = container(deployments["gateway"])
    assert k8s_value(gw, "GW_VOICE_ADVERTISE_HOST") == "POD-POD_IP"
    assert k8s_env(gw)["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    vc = container(deployments["voice"])
    media_port = split_url(k8s_value(vc, "VOICE_MEDIA_URL"))[1]
    assert k8s_value(vc, "VOICE_ADVERTISE_URL") == f"tcp://POD-POD_IP:{media_port}"
    assert k8s_env(vc)["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_k8s_gateway_service(manifests, deployments):
    svc = of_kind(manifests, "Service")["vap-gateway"]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    gw = container(deployments["gateway"])
    named = {p["name"]: p["containerPort"] for p in gw["ports"]}
    targets = [named.get(p["targetPort"], p["targetPort"]) for p in svc["spec"]["ports"]]
    assert 8000 in targets


def test_k8s_voice_hpa_pdb_and_drain(manifests, deployments, tables):
    hpa = of_kind(manifests, "HorizontalPodAutoscaler")["vap-voice"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployments["voice"]["metadata"]["name"]}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"]
    vc = container(deployments["voice"])
    assert vc["resources"]["requests"]["cpu"], "an HPA on CPU needs CPU requests"

    pdbs = [p for p in of_kind(manifests, "PodDisruptionBudget").values()
            if p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component")
            == "voice"]
    assert len(pdbs) == 1 and pdbs[0]["apiVersion"] == "policy/v1"
    pdb = pdbs[0]["spec"]
    assert "minAvailable" in pdb or "maxUnavailable" in pdb
    if isinstance(pdb.get("minAvailable"), int):
        assert pdb["minAvailable"] < hpa["spec"]["minReplicas"], "PDB would block every drain"

    env = k8s_env(vc)
    drain_ms = int(env["VOICE_DRAIN_MS"]["value"] if "VOICE_DRAIN_MS" in env
                   else tables["voice"]["VOICE_DRAIN_MS"][0])
    grace = deployments["voice"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace * 1000 > drain_ms, f"grace {grace}s shorter than VOICE_DRAIN_MS {drain_ms}"
    gw = deployments["gateway"]
    gw_drain = int(k8s_env(container(gw)).get("GW_DRAIN_MS", {}).get("value", "0"))
    assert gw["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] * 1000 > gw_drain


def test_k8s_network_policies(manifests, deployments):
    """The unauthenticated internal ports are open only to the portal's own pods; from
    elsewhere only the gateway's HTTP port and the metrics ports."""
    policies = of_kind(manifests, "NetworkPolicy")
    assert policies, "no NetworkPolicy"
    own = {"app.kubernetes.io/name": "vap"}

    def selects(policy, dep):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        sel = policy["spec"]["podSelector"]
        if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
            return False
        for e in sel.get("matchExpressions", []):
            assert e["operator"] == "In"
            if labels.get(e["key"]) not in e["values"]:
                return False
        return True

    for name, dep in deployments.items():
        mine = [p for p in policies.values() if selects(p, dep)]
        assert mine, f"{name}: no NetworkPolicy selects its pods"
        ports = {p["name"] for p in container(dep).get("ports", [])}
        for policy in mine:
            assert policy["spec"]["policyTypes"] == ["Ingress"]
            for rule in policy["spec"]["ingress"]:
                froms = rule.get("from")
                if froms:  # only the portal's own pods
                    assert all(f.get("podSelector", {}).get("matchLabels") == own and
                               "namespaceSelector" not in f for f in froms), (name, rule)
                else:  # from anywhere: only these named ports
                    open_ports = {p["port"] for p in rule["ports"]}
                    allowed = {"http"} if name == "gateway" else {"metrics"}
                    assert open_ports <= allowed and open_ports <= ports, (name, open_ports)


def test_k8s_images_and_binaries(deployments, built_targets):
    for name, dep in deployments.items():
        c = container(dep)
        assert c["image"].split(":")[0].endswith("vap"), c["image"]
        assert f"vap-{name}" in built_targets


def test_compose_and_k8s_drain_agree(compose, deployments):
    voice = compose["services"]["voice"]
    drain_ms = int(env_of(voice)["VOICE_DRAIN_MS"])
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(voice["stop_grace_period"]))
    grace = int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    assert grace * 1000 > drain_ms, f"voice stop_grace_period {grace}s < VOICE_DRAIN_MS"


def test_portal_knows_compose_settings(compose, portal_vars, all_config_vars):
    """Every variable the stack sets is one the build or the portal script knows."""
    for name in SERVICES:
        for var in env_of(compose["services"][name]):
            assert var in all_config_vars or var in portal_vars, var
