#!/usr/bin/env python3
"""Checks the Helm chart deploy/helm/changetrail-consumer with the real helm:

  version   Chart.yaml version and appVersion = project(... VERSION x.y.z) of
            the root CMakeLists.txt
  lint      `helm lint --strict` with the default values and with each
            optional part enabled (KEDA, HPA, ServiceMonitor, existing Secret)
  template  `helm template` of each of those, every built-in kind validated
            against the Kubernetes OpenAPI schemas of kubernetes-validate
            (strict, as tests/deploy_check.py does for deploy/k8s); KEDA and
            Prometheus Operator kinds structurally; then what matters: probes
            on /readyz and /healthz, non-root, terminationGracePeriodSeconds >
            shutdown_timeout_ms, Secret placeholders only, cross-references
            (Secret keys, ConfigMap, selectors, scale targets, ServiceMonitor)
  same      the default rendering equals deploy/k8s (Kustomize) object by
            object, KEDA's and the HPA's those of deploy/k8s, the
            ServiceMonitor deploy/monitoring/servicemonitor.yaml (Helm's
            bookkeeping labels and checksum annotations aside)
  refused   values the chart must refuse fail to render (grace period too
            short, KEDA and HPA together, more replicas than partitions,
            loopback listen, no Secret at all, a misspelt value refused by
            values.schema.json)
  config    the rendered consumer.ini through `changetrail-consumer
            --check-config` (with --consumer)

helm: $HELM, else $CT_CACHE_DIR/bin/helm (~/.cache/changetrail/bin/helm, put
there by scripts/install-deps.sh), else PATH.

usage: helm_check.py [--consumer PATH] [--source REPO]
Exit 0, 1 on a failure, 77 (skip) without helm or the Python modules of
tests/requirements.txt (the version check still fails the test).
"""
import argparse
import configparser
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
RELEASE, NAMESPACE = "changetrail-consumer", "changetrail"
HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version",
               "app.kubernetes.io/managed-by"}
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


def find_helm():
    if os.environ.get("HELM"):
        return os.environ["HELM"], os.environ["HELM"]
    cache = os.environ.get("CT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "changetrail")
    p = Path(cache, "bin", "helm")
    return (str(p) if p.exists() else shutil.which("helm")), p


def ini_of(text):
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"), delimiters=("=",))
    cp.optionxform = str
    cp.read_string(text)
    return {s: dict(cp.items(s)) for s in cp.sections()}


def diff(a, b, path=""):
    """First differences between two parsed YAML trees, as 'path: a != b' strings."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"{path}.{k}: missing in the chart")
            elif k not in b:
                out.append(f"{path}.{k}: only in the chart ({a[k]!r})")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def normalized(x, renames):
    """Helm's bookkeeping out: its labels, checksum annotations, namespaces; names per `renames`."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if k in HELM_LABELS or (isinstance(k, str) and k.startswith("checksum/")) or k == "namespace":
                continue
            out[k] = normalized(v, renames)
        if "consumer.ini" in out and isinstance(out["consumer.ini"], str):
            out["consumer.ini"] = ini_of(out["consumer.ini"])
        for k in ("annotations", "labels"):
            if out.get(k) == {}:
                del out[k]
        return out
    if isinstance(x, list):
        return [normalized(v, renames) for v in x]
    return renames.get(x, x) if isinstance(x, str) else x


class Helm:
    def __init__(self, exe, chart):
        self.exe, self.chart = exe, str(chart)

    def run(self, *args):
        return subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HELM_CACHE_HOME": self.tmp, "HELM_CONFIG_HOME": self.tmp,
                                   "HELM_DATA_HOME": self.tmp})

    def template(self, sets, release=RELEASE):
        args = ["template", release, self.chart, "--namespace", NAMESPACE]
        for s in sets:
            args += ["--set", s] if not s.startswith("@") else ["-f", s[1:]]
        return self.run(*args)


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def check_render(name, docs, expect, secret_name=None, placeholders=True, consumer=None):
    """Schema and semantic checks of one rendering; returns {kind: [objects]}."""
    for x in docs:
        key = f"{name} {x.get('kind')}/{x.get('metadata', {}).get('name')}"
        api = x.get("apiVersion", "")
        if api.startswith(("keda.sh/", "monitoring.coreos.com/")):
            continue  # CRDs: checked structurally below
        try:
            kubernetes_validate.validate(x, K8S_VERSION, strict=True)
            ok(f"{key}: valid against the Kubernetes {K8S_VERSION} schema (strict)")
        except Exception as e:  # ValidationError, SchemaNotFoundError, ...
            fail(f"{key}: Kubernetes {K8S_VERSION} schema", str(e).splitlines()[0][:300])
    k = by_kind(docs)
    check(sorted(k) == sorted(expect) and all(len(v) == 1 for v in k.values()),
          f"{name}: renders one each of {', '.join(sorted(expect))}", str({a: len(b) for a, b in k.items()}))
    one = lambda kind: (k.get(kind) or [{}])[0]
    cm, sec, dep, svc = one("ConfigMap"), one("Secret"), one("Deployment"), one("Service")
    pdb, so, ta, hpa, sm = (one(x) for x in ("PodDisruptionBudget", "ScaledObject", "TriggerAuthentication",
                                             "HorizontalPodAutoscaler", "ServiceMonitor"))
    for x in docs:
        check(x.get("metadata", {}).get("namespace") == NAMESPACE,
              f"{name} {x['kind']}: in the release's namespace")

    ini_text = cm.get("data", {}).get("consumer.ini", "")
    ini = ini_of(ini_text)
    shutdown_ms = int(ini.get("consumer", {}).get("shutdown_timeout_ms", "30000"))
    port = int(ini.get("http", {}).get("listen", ":0").rsplit(":", 1)[1])
    secret_name = secret_name or sec.get("metadata", {}).get("name")
    secret_data = dict(sec.get("stringData", {}))
    if sec:
        check(not sec.get("data"), f"{name}: Secret uses stringData only")
        if placeholders:
            bad = [key for key, v in secret_data.items() if re.search("password|uri", key) and "REPLACE_ME" not in v]
            check(not bad, f"{name}: Secret holds placeholders only (REPLACE_ME)", f"real-looking values in {bad}")

    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    (ctr,) = pod.get("containers", [{}])[:1] or [{}]
    ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports", [])}
    check(ports.get("metrics") == port, f"{name}: container port 'metrics' = [http] listen port {port}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
        g = ctr.get(probe, {}).get("httpGet", {})
        check(g.get("path") == path and g.get("port") in ("metrics", port),
              f"{name}: {probe} GET {path} on the consumer's HTTP port", str(g))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace * 1000 > shutdown_ms,
          f"{name}: terminationGracePeriodSeconds {grace}s > shutdown_timeout_ms {shutdown_ms}")
    sc, psc = ctr.get("securityContext", {}), pod.get("securityContext", {})
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    check((sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) and uid not in (None, 0)
          and sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
          and "ALL" in sc.get("capabilities", {}).get("drop", []),
          f"{name}: non-root (uid {uid}), read-only root fs, no privilege escalation, capabilities dropped")
    res = ctr.get("resources", {})
    check(all(x in res.get("requests", {}) for x in ("cpu", "memory")) and "memory" in res.get("limits", {}),
          f"{name}: resource requests (cpu, memory) and memory limit")
    refs = [e for e in ctr.get("env", []) if e.get("valueFrom", {}).get("secretKeyRef")]
    check(len(refs) >= 2 and all(e["valueFrom"]["secretKeyRef"]["name"] == secret_name
                                 and (not sec or e["valueFrom"]["secretKeyRef"]["key"] in secret_data)
                                 for e in refs),
          f"{name}: env secrets read existing keys of Secret {secret_name}")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = [m for m in ctr.get("volumeMounts", []) if vols.get(m["name"], {}).get("configMap")]
    check(len(mounts) == 1 and mounts[0]["mountPath"] == "/etc/changetrail"
          and vols[mounts[0]["name"]]["configMap"]["name"] == cm.get("metadata", {}).get("name"),
          f"{name}: the ConfigMap's consumer.ini mounted at /etc/changetrail")
    sel = spec.get("selector", {}).get("matchLabels", {})
    check(sel and all(labels.get(a) == b for a, b in sel.items()), f"{name}: Deployment selector matches its pods")
    for kind, obj, s in (("Service", svc, svc.get("spec", {}).get("selector")),
                         ("PodDisruptionBudget", pdb, pdb.get("spec", {}).get("selector", {}).get("matchLabels"))):
        if obj:
            check(s and all(labels.get(a) == b for a, b in s.items()), f"{name}: {kind} selector matches the pods")
    if svc:
        check(svc["spec"]["ports"][0].get("port") == port and svc["spec"]["ports"][0].get("targetPort") == "metrics",
              f"{name}: Service port {port} -> 'metrics'")
    autoscaled = bool(so or hpa)
    check(("replicas" in spec) != autoscaled,
          f"{name}: spec.replicas " + ("left to the autoscaler" if autoscaled else "set"))
    dname = dep.get("metadata", {}).get("name")
    if so:
        ann = int(so["metadata"].get("annotations", {}).get("changetrail/partitions", 0))
        s = so.get("spec", {})
        trig = (s.get("triggers") or [{}])[0]
        md = trig.get("metadata", {})
        check(s.get("scaleTargetRef", {}).get("name") == dname, f"{name}: ScaledObject targets the Deployment")
        check(trig.get("type") == "kafka" and int(md.get("lagThreshold", 0)) > 0
              and md.get("consumerGroup") == ini["consumer"]["group_id"]
              and md.get("topic") == ini["consumer"]["topic"]
              and md.get("bootstrapServers") == ini["kafka"]["bootstrap.servers"],
              f"{name}: kafka trigger on the consumer's brokers, group_id and topic with a lagThreshold", str(md))
        check(0 < s.get("minReplicaCount", 0) <= s.get("maxReplicaCount", 0) <= ann,
              f"{name}: 1 <= minReplicaCount <= maxReplicaCount <= partitions ({ann})")
        check(trig.get("authenticationRef", {}).get("name") == ta.get("metadata", {}).get("name")
              and all(r.get("name") == secret_name and (not sec or r.get("key") in secret_data)
                      for r in ta.get("spec", {}).get("secretTargetRef", [])),
              f"{name}: TriggerAuthentication exists and reads existing Secret keys")
    if hpa:
        ann = int(hpa["metadata"].get("annotations", {}).get("changetrail/partitions", 0))
        hs = hpa["spec"]
        check(hs.get("scaleTargetRef", {}).get("name") == dname
              and any(m.get("type") == "External" for m in hs.get("metrics", []))
              and 0 < hs.get("minReplicas", 0) <= hs.get("maxReplicas", 0) <= ann,
              f"{name}: HPA on an external lag metric, targets the Deployment, maxReplicas <= partitions ({ann})")
    if sm:
        s = sm.get("spec", {})
        slabels = svc.get("metadata", {}).get("labels", {})
        msel = s.get("selector", {}).get("matchLabels", {})
        check(msel and all(slabels.get(a) == b for a, b in msel.items())
              and s.get("jobLabel") == "app.kubernetes.io/name"
              and slabels.get("app.kubernetes.io/name") == "changetrail-consumer",
              f"{name}: ServiceMonitor selects the metrics Service, job label changetrail-consumer")
        check([e.get("port") for e in s.get("endpoints", [])] == ["metrics"]
              and s["endpoints"][0].get("path") == "/metrics", f"{name}: ServiceMonitor scrapes port metrics /metrics")
    if consumer and ini_text:
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
            f.write(ini_text)
        try:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "CHANGETRAIL_MONGODB_URI": "mongodb://changetrail:dummy-secret-0123@db1:27017/?authSource=admin",
                   "CHANGETRAIL_KAFKA_SASL_PASSWORD": "dummy-secret-0123", "CHANGETRAIL_KAFKA_CLIENT_ID": "pod-0"}
            for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
                if v in os.environ:
                    env[v] = os.environ[v]
            r = subprocess.run([consumer, "--check-config", "--config", f.name], capture_output=True, text=True,
                               env=env, timeout=60)
            check(r.returncode == 0, f"{name}: changetrail-consumer --check-config accepts the rendered consumer.ini",
                  (r.stderr or r.stdout).strip())
        finally:
            os.unlink(f.name)
    return k


def kustomize_objects(src):
    out = {}
    for f in [*sorted((src / "deploy/k8s").glob("*.yaml")), src / "deploy/k8s/alternatives/hpa-external-lag.yaml",
              src / "deploy/monitoring/servicemonitor.yaml"]:
        for x in yaml.safe_load_all(f.read_text()):
            if x and x.get("kind") != "Kustomization":
                out[x["kind"]] = x
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--consumer", help="path of the built changetrail-consumer (--check-config of the renderings)")
    ap.add_argument("--source", default=str(Path(__file__).resolve().parents[1]))
    a = ap.parse_args()
    src = Path(a.source)
    chart = src / "deploy/helm/changetrail-consumer"

    cm_text = (src / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*changetrail\s+VERSION\s+([0-9][0-9.]*)", cm_text)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    version = m.group(1) if m else None
    check(version and meta.get("version") == version and str(meta.get("appVersion")) == version,
          f"version: Chart.yaml version/appVersion = CMakeLists.txt project version {version}",
          f"Chart.yaml version {meta.get('version')}, appVersion {meta.get('appVersion')}")

    exe, cached = find_helm()
    if not exe:
        print(f"skip: helm not found ($HELM, {cached} or PATH; scripts/install-deps.sh "
              "builds it there with `go install helm.sh/helm/v3/cmd/helm@...` when Go is installed)")
        return 1 if failed else 77
    helm = Helm(exe, chart)
    with tempfile.TemporaryDirectory() as tmp:
        helm.tmp = tmp
        r = helm.run("version", "--short")
        print(f"helm {r.stdout.strip()} ({exe})")

        big = Path(tmp, "big.yaml")
        big.write_text("config:\n  consumer:\n    cache_max_documents: 2000000\n    batch_size: 1000\n"
                       "keda:\n  enabled: true\n  lagThreshold: 1000000\n")
        base = {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"}
        scenarios = [
            ("default", [], base),
            ("keda+servicemonitor", ["keda.enabled=true", "serviceMonitor.enabled=true"],
             base | {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"}),
            ("hpa", ["hpa.enabled=true"], base | {"HorizontalPodAutoscaler"}),
            ("existing-secret+keda", ["secret.create=false", "secret.existingSecret=ct-prod", "keda.enabled=true",
                                      "pdb.enabled=false", "service.enabled=false"],
             {"ConfigMap", "Deployment", "ScaledObject", "TriggerAuthentication"}),
            ("large-numbers", ["@" + str(big)], base | {"ScaledObject", "TriggerAuthentication"}),
        ]
        rendered = {}
        for name, sets, expect in scenarios:
            args = []
            for s in sets:
                args += ["-f", s[1:]] if s.startswith("@") else ["--set", s]
            r = helm.run("lint", "--strict", str(chart), "--namespace", NAMESPACE, *args)
            check(r.returncode == 0 and "0 chart(s) failed" in r.stdout, f"{name}: helm lint --strict",
                  (r.stdout + r.stderr).strip()[-800:])
            r = helm.template(sets)
            if not check(r.returncode == 0, f"{name}: helm template", r.stderr.strip()[-800:]):
                continue
            try:
                docs = [x for x in yaml.safe_load_all(r.stdout) if x]
            except yaml.YAMLError as e:
                fail(f"{name}: helm template output is YAML", str(e))
                continue
            rendered[name] = check_render(name, docs, expect,
                                          secret_name="ct-prod" if "existing-secret" in name else None,
                                          consumer=a.consumer)

        if "large-numbers" in rendered:
            k = rendered["large-numbers"]
            ini = ini_of(k["ConfigMap"][0]["data"]["consumer.ini"])
            check(ini["consumer"]["cache_max_documents"] == "2000000"
                  and k["ScaledObject"][0]["spec"]["triggers"][0]["metadata"]["lagThreshold"] == "1000000",
                  "large-numbers: whole numbers of a values file render without exponent (2000000, not 2e+06)",
                  str(ini.get("consumer")))

        # another release name: every object prefixed, references follow
        r = helm.template(["keda.enabled=true", "serviceMonitor.enabled=true"], release="prod")
        if check(r.returncode == 0, "release prod: helm template", r.stderr.strip()[-400:]):
            docs = [x for x in yaml.safe_load_all(r.stdout) if x]
            names = {x["metadata"]["name"] for x in docs}
            check(all(n.startswith("prod-changetrail-consumer") for n in names),
                  "release prod: object names prefixed prod-changetrail-consumer", str(sorted(names)))
            check_render("release prod", docs, base | {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"})

        # the same objects as deploy/k8s (Kustomize) and deploy/monitoring
        kz = kustomize_objects(src)
        renames = {"changetrail-consumer-kafka": "changetrail-kafka"}
        for scen, kinds in (("default", sorted(base)), ("keda+servicemonitor",
                                                       ["ScaledObject", "TriggerAuthentication", "ServiceMonitor"]),
                            ("hpa", ["HorizontalPodAutoscaler"])):
            for kind in kinds:
                if scen not in rendered or kind not in rendered[scen]:
                    continue
                got = normalized(rendered[scen][kind][0], renames)
                want = normalized(kz.get(kind, {}), {})
                # the chart may label more (app.kubernetes.io/name everywhere), never differently
                gl, wl = got.get("metadata", {}).get("labels", {}), want.get("metadata", {}).get("labels", {})
                if gl and all(gl.get(x) == y for x, y in wl.items()):
                    got["metadata"]["labels"] = dict(wl)
                d = diff(got, want)
                where = "deploy/monitoring" if kind == "ServiceMonitor" else "deploy/k8s"
                check(not d, f"same: {scen} {kind} equals {where}'s", "; ".join(d[:6]))

        # values the chart must refuse
        for name, sets, msg in (
                ("grace period not above shutdown_timeout_ms", ["terminationGracePeriodSeconds=30"],
                 "terminationGracePeriodSeconds"),
                ("KEDA and HPA together", ["keda.enabled=true", "hpa.enabled=true"], "alternatives"),
                ("keda.maxReplicaCount > partitions", ["keda.enabled=true", "keda.maxReplicaCount=13"], "partitions"),
                ("hpa.maxReplicas > partitions", ["hpa.enabled=true", "partitions=4"], "partitions"),
                ("loopback [http] listen", ["config.http.listen=127.0.0.1:9464"], "loopback"),
                ("no Secret at all", ["secret.create=false"], "existingSecret"),
                ("ServiceMonitor without the Service", ["serviceMonitor.enabled=true", "service.enabled=false"],
                 "service.enabled"),
                ("a misspelt value (values.schema.json)", ["keda.enable=true"], "additional properties"),
                ("a nested [section] in config (values.schema.json)", ["config.consumer.batch.size=1"], "config")):
            r = helm.template(sets)
            check(r.returncode != 0 and msg in r.stderr, f"refused: {name}",
                  f"exit {r.returncode}: {r.stderr.strip()[-300:]}")

    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
