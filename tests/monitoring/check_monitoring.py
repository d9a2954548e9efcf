#!/usr/bin/env python3
"""check_monitoring.py - the monitoring bundle in deploy/monitoring checked with
the real tool and against what the consumer exports:

- alerts.yaml: `promtool check rules`, then `promtool test rules` on
  tests/monitoring/alerts_test.yaml (each alert fires when it should, not when
  it should not);
- grafana-dashboard.json: a Grafana dashboard (panels with ids, grid
  positions, targets on the Prometheus data source input); every query parses
  (promtool check rules on them as recording rules);
- every metric named in the alerts and the dashboard is one that
  consumer/metrics.c renders (a renamed or removed metric breaks this test,
  not a dashboard in production);
- servicemonitor.yaml: selects deploy/k8s/service.yaml's labels and port, and
  its job label is the "changetrail-consumer" the alerts and dashboard select.

usage: check_monitoring.py SOURCE_DIR   (exit 77 when promtool is missing,
unless CT_TEST_REQUIRE_TOOLS=1)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
mon = os.path.join(src, "deploy", "monitoring")
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


promtool = shutil.which("promtool")
if not promtool:
    print("promtool not found (Debian: apt-get install prometheus; scripts/install-deps.sh does)")
    sys.exit(1 if os.environ.get("CT_TEST_REQUIRE_TOOLS") == "1" else 77)


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


# 1. alert rules: syntax, then their unit tests
rc, out = run(promtool, "check", "rules", os.path.join(mon, "alerts.yaml"))
check(rc == 0, "promtool check rules deploy/monitoring/alerts.yaml" + ("" if rc == 0 else "\n" + out))
rc, out = run(promtool, "test", "rules", os.path.join(src, "tests", "monitoring", "alerts_test.yaml"))
check(rc == 0, "promtool test rules tests/monitoring/alerts_test.yaml" + ("" if rc == 0 else "\n" + out))
with open(os.path.join(mon, "alerts.yaml")) as f:
    rules = yaml.safe_load(f)
alert_names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
for want in ("ChangetrailConsumerLagGrowing", "ChangetrailDeadLetters", "ChangetrailStoreErrors",
             "ChangetrailPaused", "ChangetrailNotReady"):
    check(want in alert_names, f"alert {want} (lag growing, DLQ rate, store errors, paused, not ready)")
exprs = [("alert " + r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]

# 2. the dashboard
with open(os.path.join(mon, "grafana-dashboard.json")) as f:
    dash = json.load(f)
check(dash.get("uid") and dash.get("title") and isinstance(dash.get("panels"), list) and dash["panels"],
      "grafana-dashboard.json: uid, title, panels")
ids = [p.get("id") for p in dash["panels"]]
check(len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), "dashboard: panel ids unique")
inputs = {i["name"] for i in dash.get("__inputs", []) if i.get("type") == "datasource"}
for p in dash["panels"]:
    gp = p.get("gridPos", {})
    check(all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")) and gp["x"] + gp["w"] <= 24,
          f"dashboard panel '{p['title']}': grid position within 24 columns")
    check(p.get("datasource", {}).get("uid", "").strip("${}") in inputs and p.get("targets"),
          f"dashboard panel '{p['title']}': queries on the Prometheus input")
    for t in p.get("targets", []):
        exprs.append((f"panel '{p['title']}' {t['refId']}", t["expr"]))

# every query parses: as recording rules for promtool ($__rate_interval as Grafana would give)
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"ct:dashboard:q{i}", "expr": e.replace("$__rate_interval", "1m")}
        for i, (_, e) in enumerate(exprs)]}]}, f)
    qpath = f.name
rc, out = run(promtool, "check", "rules", qpath)
os.unlink(qpath)
check(rc == 0, f"promtool parses all {len(exprs)} queries (alerts and dashboard)" + ("" if rc == 0 else "\n" + out))

# 3. every metric used is one the consumer renders
with open(os.path.join(src, "consumer", "metrics.c")) as f:
    code = f.read()
exported = set(re.findall(r'"(?:# HELP |# TYPE )?((?:changetrail|process)_[a-z_]+)', code))
used = set()
for _, e in exprs:
    used |= set(re.findall(r"\b((?:changetrail|process)_[a-z_]+)\b", e))
for name in sorted(used):
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    check(name in exported or base in exported, f"metric {name} is rendered by consumer/metrics.c")
check("changetrail_build_info" in used and "process_resident_memory_bytes" in used,
      "dashboard shows build_info and the process metrics")

# 4. the ServiceMonitor against the Service it scrapes
with open(os.path.join(mon, "servicemonitor.yaml")) as f:
    sm = yaml.safe_load(f)
with open(os.path.join(src, "deploy", "k8s", "service.yaml")) as f:
    svc = yaml.safe_load(f)
check(sm.get("apiVersion") == "monitoring.coreos.com/v1" and sm.get("kind") == "ServiceMonitor",
      "servicemonitor.yaml is a monitoring.coreos.com/v1 ServiceMonitor")
labels = svc["metadata"]["labels"]
sel = sm["spec"]["selector"]["matchLabels"]
check(all(labels.get(k) == v for k, v in sel.items()), "ServiceMonitor selects deploy/k8s/service.yaml's labels")
ports = {p["name"] for p in svc["spec"]["ports"]}
check(all(ep.get("port") in ports for ep in sm["spec"]["endpoints"]), "ServiceMonitor endpoints name the Service's port")
check(labels.get(sm["spec"].get("jobLabel", "")) == "changetrail-consumer",
      "ServiceMonitor's job label is changetrail-consumer, what the alerts select")

print(f"\n{len(failures)} failed")
sys.exit(1 if failures else 0)
