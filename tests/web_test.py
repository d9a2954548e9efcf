#!/usr/bin/env python3
"""`changetrail serve` (docs/web.md) against the local servers, with history written by the real consumer.

Raw change events go to a unique topic (kcat, else confluent-kafka); changetrail-consumer writes them
into a unique database; `changetrail serve --listen 127.0.0.1:0` serves it. Then:
- the JSON API: search, timeline pages, a version (and an instant) with its diff to the current state,
  a context across collections, an actor's records over a time range page by page, verify, deleted
  documents, HTTP safety (GET only, no body, bounded arguments, Host check, headers), bearer and basic
  auth;
- timing: one timeline page (API, and the page in the browser) of a document with 10000 versions,
  printed, under 200 ms;
- the UI in headless Chromium (Debian's chromium + chromium-driver, Selenium): search -> document ->
  version -> context, what each page shows, and hostile keys and values (HTML, JS, terminal escapes)
  shown as text with no script run. CT_WEB_SCREENSHOTS=DIR saves the main pages there (docs/img).

Run by ctest (tests/scripts/web.cmake): exit 77 (skipped) without CT_KAFKA_BOOTSTRAP / CT_MONGODB_URI,
pymongo or selenium/chromium, unless CT_TEST_REQUIRE_SERVERS=1.
"""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("CT_SOURCE_DIR", os.path.dirname(HERE))
BUILD = os.environ.get("CT_BINARY_DIR", os.path.join(SOURCE, "build"))
CLI = os.environ.get("CT_CLI_BIN") or os.path.join(BUILD, "cli", "changetrail")
CONSUMER = os.environ.get("CT_CONSUMER_BIN") or os.path.join(BUILD, "consumer", "changetrail-consumer")
NEED = os.environ.get("CT_TEST_REQUIRE_SERVERS") == "1"

PERF_VERSIONS = 10000
PAGE_BUDGET_MS = 200.0


def chromium_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    return browser, driver


def servers_or_exit():
    missing = [v for v in ("CT_KAFKA_BOOTSTRAP", "CT_MONGODB_URI") if not os.environ.get(v)]
    for mod in ("pymongo", "pytest", "selenium"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod + " (tests/requirements.txt)")
    b, d = chromium_paths()
    if not b or not d:
        missing.append("chromium and chromium-driver (scripts/install-deps.sh)")
    if missing:
        print("SKIP: missing " + ", ".join(missing), file=sys.stderr)
        sys.exit(1 if NEED else 77)


if __name__ == "__main__":
    servers_or_exit()

import pytest  # noqa: E402

# ---- the history the tests read ----------------------------------------------------------------

RUN = uuid.uuid4().hex[:8]
C1 = "0190c6a4-%s-7000-8000-00000000c001" % RUN[:4]  # products + orders: a changeset across collections
C2 = "0190c6a4-%s-7000-8000-00000000c002" % RUN[:4]
CX = "0190c6a4-%s-7000-8000-00000000c0de" % RUN[:4]  # the hostile one
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = "<img src=x onerror=\"window.__xss=2\">"
TERM = "\x1b[2J\x1b]0;owned\x07"
BIDI = "\u202egnp.exe"
HOSTILE_ID = "<b>x</b>\"'&" + XSS_IMG
HOSTILE_ACTOR = "eve" + XSS_SCRIPT
HOSTILE_DOC = {XSS_IMG: XSS_SCRIPT, "term": TERM, "bidi": BIDI, "nested": {"<i>k</i>": [XSS_IMG, {"a.b": "</pre>" + XSS_SCRIPT}]}}

W1 = {"name": "Widget", "qty": 10, "price": {"amount": 9.5, "currency": "EUR"}, "tags": []}
W2 = {"name": "Widget", "qty": 7, "price": {"amount": 8.0, "currency": "EUR"}, "tags": ["sale"]}
W3 = {"name": "Widget Pro", "qty": 7, "price": {"amount": 8.0, "currency": "EUR"}, "tags": ["sale", "new"]}
# (collection, document_id, op, ts, actor, context, after)
EVENTS = [
    ("products", "sku-1", "insert", "2024-05-01T10:00:01.000000Z", "alice", C1, W1),
    ("orders", "o-1", "insert", "2024-05-01T10:00:02.000000Z", "alice", C1, {"lines": [{"sku": "sku-1", "n": 2}]}),
    ("products", "sku-2", "insert", "2024-05-01T10:00:03.000000Z", "alice", C1, {"name": "Gadget", "qty": 1}),
    ("products", "sku-1", "update", "2024-05-01T11:00:00.000000Z", "bob", C2, W2),
    ("products", "sku-1", "update", "2024-05-01T12:00:00.000000Z", "bob", None, W3),
    ("products", "sku-2", "delete", "2024-05-01T12:30:00.000000Z", "carol", None, None),
    ("products", HOSTILE_ID, "insert", "2024-05-02T09:00:00.000000Z", HOSTILE_ACTOR, CX, HOSTILE_DOC),
    ("products", HOSTILE_ID, "update", "2024-05-02T09:00:01.000000Z", HOSTILE_ACTOR, CX,
     dict(HOSTILE_DOC, term=TERM + "2")),
] + [  # pruned by the test (changetrail prune): versions 1..3 old, 4..5 in the future
    ("pruned", "p-1", "insert" if v == 1 else "update",
     ("2024-05-03T10:00:0%d.000000Z" if v <= 3 else "2099-01-01T00:00:0%d.000000Z") % v, "pat", None, {"v": v})
    for v in range(1, 6)
]
PERF_ID = "big-1"


def event_lines():
    lines = []
    n = 0

    def add(coll, doc, op, ts, actor, ctx, after, meta=None):
        nonlocal n
        n += 1
        ev = {"schema": "changetrail.event.v1", "event_id": "0190c6a4-%s-7%03x-8%03x-%012x" % (RUN[4:8], n >> 24 & 0xfff, n >> 12 & 0xfff, n),
              "ts": ts, "source": "web-test", "collection": coll, "document_id": doc, "op": op}
        if actor:
            ev["actor"] = actor
        if ctx:
            ev["context"] = {"id": ctx, "metadata": meta or {"request": "PATCH /products/sku-1" if ctx == C2 else "POST /orders"}}
        if after is not None:
            ev["after"] = after
        lines.append(("%s/%s" % (coll, doc), json.dumps(ev, separators=(",", ":"))))

    for coll, doc, op, ts, actor, ctx, after in EVENTS:
        meta = {"url": XSS_IMG, "term": TERM} if ctx == CX else None
        add(coll, doc, op, ts, actor, ctx, after, meta)
    add("orders", "o-1", "context_end", "2024-05-01T10:00:04.000000Z", "alice", C1, None)
    for i in range(PERF_VERSIONS):  # one document, 10000 versions
        t = 1714600000 + i
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % (i % 1000000)
        add("perf", PERF_ID, "insert" if i == 0 else "update", ts, "loader", None,
            {"n": i, "name": "big", "nested": {"even": i % 2 == 0, "list": [i % 7, i % 5]}})
    return lines


def produce(bootstrap, topic, lines):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat:
        subprocess.run([kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "\t"],
                       input="".join(k + "\t" + v + "\n" for k, v in lines), text=True, check=True, timeout=120)
        return
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for k, v in lines:
        p.produce(topic, value=v.encode(), key=k.encode())
        p.poll(0)
    assert p.flush(60) == 0


class Server:
    """`changetrail serve` on a free port; stopped with SIGTERM."""

    def __init__(self, uri, db, extra=(), quiet=True):
        self.proc = subprocess.Popen([CLI, "serve", "--listen", "127.0.0.1:0", "--uri", uri, "--db", db,
                                      *(["--quiet"] if quiet else []), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if not m:
            self.proc.kill()
            raise AssertionError("serve did not start: %r %r" % (line, self.proc.stderr.read()))
        self.url = m.group(1)
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    def stop(self):
        """Stops it (SIGTERM) and returns its stderr; it must exit 0 (under ASan: no leak)."""
        self.proc.terminate()
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("serve did not stop on SIGTERM")
        err = self.proc.stderr.read()
        assert rc == 0, "serve exited %d: %s" % (rc, err[-3000:])
        return err


@pytest.fixture(scope="module")
def env():
    from pymongo import MongoClient
    bootstrap, uri = os.environ["CT_KAFKA_BOOTSTRAP"], os.environ["CT_MONGODB_URI"]
    tag = "ctweb_%d_%s" % (os.getpid(), RUN)
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    fd, config = tempfile.mkstemp(suffix=".ini")
    with os.fdopen(fd, "w") as f:
        f.write("[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
                "topic.metadata.refresh.interval.ms = 1000\n"
                "[mongodb]\nuri = %s\ndatabase = %s\n"
                "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\nbatch_size = 1000\n"
                "exit_on_idle_ms = 2000\nshutdown_timeout_ms = 10000\nlog_level = warn\n[http]\nlisten =\n"
                % (bootstrap, uri, tag, tag, tag, tag))
    srv = None
    try:
        lines = event_lines()
        produce(bootstrap, tag, lines)
        t0 = time.time()
        subprocess.run([CONSUMER, "--config", config], check=True, timeout=600)
        db = client[tag]
        n = db.history.count_documents({})
        # context_end makes no record
        assert n == len(lines) - 1, "the consumer wrote %d records of %d events in %.1fs" % (n, len(lines), time.time() - t0)
        print("consumer: %d events in %.1f s" % (len(lines), time.time() - t0))
        srv = Server(uri, tag)
        yield {"uri": uri, "db": tag, "url": srv.url, "port": srv.port, "mongo": db}
    finally:
        if srv:
            srv.stop()
        client.drop_database(tag)
        client.close()
        os.unlink(config)


def get(env_or_url, path, args=None, headers=None, method="GET", data=None):
    """(status, headers, parsed JSON or text) of one request."""
    base = env_or_url["url"] if isinstance(env_or_url, dict) else env_or_url
    url = base + path.lstrip("/") + ("?" + urllib.parse.urlencode(args) if args else "")
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        body, status, hdrs = e.read(), e.code, e.headers
    ctype = hdrs.get("Content-Type", "")
    return status, hdrs, json.loads(body) if ctype.startswith("application/json") else body.decode()


def api(env, route, **args):
    status, _, body = get(env, "/api/v1/" + route, args)
    assert status == 200, (route, args, status, body)
    return body


# ---- the JSON API ---------------------------------------------------------------------------------


def test_search_by_collection_and_prefix(env):
    docs = api(env, "documents", collection="products")["documents"]
    ids = [d["document_id"] for d in docs]
    assert ids == sorted(ids) and {"sku-1", "sku-2", HOSTILE_ID} <= set(ids)
    sku2 = next(d for d in docs if d["document_id"] == "sku-2")
    assert sku2["deleted"] is True and sku2["version"] == 2  # deleted documents stay browsable
    r = api(env, "documents", collection="products", prefix="sku-")
    assert [d["document_id"] for d in r["documents"]] == ["sku-1", "sku-2"]
    # regex characters in a prefix are literal
    assert api(env, "documents", collection="products", prefix="sku.")["documents"] == []
    assert api(env, "documents", collection="prod.cts")["documents"] == []
    # pages
    p1 = api(env, "documents", collection="products", limit=1)
    assert len(p1["documents"]) == 1 and p1["next_after"]
    p2 = api(env, "documents", collection="products", limit=1, after=p1["next_after"])
    assert p2["documents"][0]["document_id"] > p1["documents"][0]["document_id"]


def test_timeline_pages(env):
    t = api(env, "timeline", collection="products", id="sku-1", limit=2)
    assert t["current_version"] == 3 and t["deleted"] is False
    assert [r["version"] for r in t["records"]] == [3, 2] and t["next_before"] == 2
    rest = api(env, "timeline", collection="products", id="sku-1", limit=2, before=2)
    assert [r["version"] for r in rest["records"]] == [1] and rest["next_before"] is None
    v2 = t["records"][1]
    assert v2["actor"] == "bob" and v2["context_id"] == C2 and "kafka" not in v2
    fields = {(f["op"], tuple(f["path"])): f for f in v2["fields"]}
    assert fields[("change", ("qty",))]["old"] == 10 and fields[("change", ("qty",))]["new"] == 7
    assert fields[("change", ("price", "amount"))]["old"] == 9.5
    assert fields[("add", ("tags", 0))]["new"] == "sale"


def test_deleted_document(env):
    t = api(env, "timeline", collection="products", id="sku-2")
    assert t["deleted"] is True and t["records"][0]["op"] == "delete"
    assert {tuple(f["path"]) for f in t["records"][0]["fields"]} == {("name",), ("qty",)}
    v = api(env, "version", collection="products", id="sku-2")
    assert v["state"]["deleted"] is True and v["state"]["doc"] == {"name": "Gadget", "qty": 1}


def test_pruned_history(env):
    p = subprocess.run([CLI, "prune", "--older-than", "1d", "--collection", "pruned", "--uri", env["uri"], "--db", env["db"]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    t = api(env, "timeline", collection="pruned", id="p-1")
    assert [(r["version"], r["op"]) for r in t["records"]] == [(5, "update"), (4, "update"), (3, "checkpoint")]
    assert t["next_before"] is None and t["current_version"] == 5
    assert api(env, "timeline", collection="pruned", id="p-1", limit=2)["next_before"] == 4
    assert api(env, "version", collection="pruned", id="p-1", version=3)["state"]["doc"] == {"v": 3}
    assert api(env, "version", collection="pruned", id="p-1", version=4)["state"]["doc"] == {"v": 4}
    status, _, body = get(env, "/api/v1/version", {"collection": "pruned", "id": "p-1", "version": 2})
    assert status == 404 and "pruned" in body["error"]["message"]
    assert api(env, "verify", collection="pruned", id="p-1")["ok"] is True


def test_version_and_diff_to_current(env):
    v = api(env, "version", collection="products", id="sku-1", version=1)
    assert v["state"]["version"] == 1 and v["state"]["doc"] == W1
    assert v["current"]["version"] == 3 and v["current"]["doc"] == W3
    got = {(f["op"], tuple(f["path"])): (f.get("old"), f.get("new")) for f in v["diff_fields"]}
    assert got[("change", ("name",))] == ("Widget", "Widget Pro")
    assert got[("change", ("qty",))] == (10, 7)
    assert got[("add", ("tags", 0))] == (None, "sale")
    # an instant: the newest version written at or before it
    at = api(env, "version", collection="products", id="sku-1", at="2024-05-01T11:30:00Z")
    assert at["state"]["version"] == 2 and at["state"]["doc"] == W2
    status, _, body = get(env, "/api/v1/version", {"collection": "products", "id": "sku-1", "at": "2020-01-01T00:00:00Z"})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _, body = get(env, "/api/v1/version", {"collection": "products", "id": "sku-1", "version": "99"})
    assert status == 404
    # by version (rebuilt backward from the state, indexed lookups) = at its instant (the whole history read)
    for doc in ("sku-1", "sku-2", HOSTILE_ID):
        for r in api(env, "timeline", collection="products", id=doc)["records"]:
            by_v = api(env, "version", collection="products", id=doc, version=r["version"])
            by_t = api(env, "version", collection="products", id=doc, at=r["ts"])
            for k in ("state", "current"):  # the same documents and texts (keys sorted), whatever the rebuild
                assert by_v[k] == by_t[k], (doc, r["version"], k)
            key = lambda f: json.dumps(f, sort_keys=True)
            assert sorted(by_v["diff_fields"], key=key) == sorted(by_t["diff_fields"], key=key), (doc, r["version"])


def test_context_across_collections(env):
    c = api(env, "context", id=C1)
    assert c["complete"] is True and c["actor"] == "alice"
    assert set(c["collections"]) == {"products", "orders"} and c["total_records"] == 3
    assert [(r["collection"], r["document_id"]) for r in c["records"]] == [("products", "sku-1"), ("orders", "o-1"), ("products", "sku-2")]
    assert c["metadata"] == {"request": "POST /orders"}
    page = api(env, "context", id=C1, limit=2, offset=2)
    assert len(page["records"]) == 1 and page["next_offset"] is None
    assert api(env, "context", id=C2)["complete"] is False


def test_actor_over_time_range_paginated(env):
    r = api(env, "records", actor="bob")
    assert [(x["document_id"], x["version"]) for x in r["records"]] == [("sku-1", 3), ("sku-1", 2)]
    r = api(env, "records", actor="alice", since="2024-05-01T10:00:02Z", until="2024-05-01T10:00:03Z")
    assert [x["document_id"] for x in r["records"]] == ["sku-2", "o-1"]
    # page by page through 10000 records of one actor: no record twice, none missed
    seen, cursor, pages = set(), None, 0
    while pages < 4:
        args = {"actor": "loader", "limit": 500}
        if cursor:
            args["cursor"] = cursor
        r = api(env, "records", **args)
        for x in r["records"]:
            assert x["version"] not in seen
            seen.add(x["version"])
        pages += 1
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 2000 and max(seen) == min(seen) + 1999
    status, _, body = get(env, "/api/v1/records", {"actor": "bob", "cursor": "x.1"})
    assert status == 400
    status, _, body = get(env, "/api/v1/records", {})
    assert status == 400


def test_verify(env):
    v = api(env, "verify", collection="products", id="sku-1")
    assert v["ok"] is True and v["records"] == 3 and v["problems"] == []
    # a record altered in the database shows as a problem
    db = env["mongo"]
    rec = db.history.find_one({"collection": "products", "document_id": "sku-2", "version": 1})
    db.history.update_one({"_id": rec["_id"]}, {"$set": {"actor": "mallory"}})
    try:
        v = api(env, "verify", collection="products", id="sku-2")
        assert v["ok"] is False and any(p["problem"] == "modified" for p in v["problems"])
    finally:
        db.history.update_one({"_id": rec["_id"]}, {"$set": {"actor": rec["actor"]}})
    assert api(env, "verify", collection="products", id="sku-2")["ok"] is True


def test_hostile_values_are_data(env):
    t = api(env, "timeline", collection="products", id=HOSTILE_ID)
    v1 = t["records"][-1]
    assert v1["actor"] == HOSTILE_ACTOR
    assert {tuple(f["path"]): f["new"] for f in v1["fields"]}[(XSS_IMG,)] == XSS_SCRIPT
    _, hdrs, raw = get(env, "/api/v1/timeline", {"collection": "products", "id": HOSTILE_ID})
    text = json.dumps(raw)
    assert hdrs["Content-Type"].startswith("application/json")
    # the JSON is ASCII: no raw ESC, BEL or bidi control on the wire
    _, _, body = get(env, "/api/v1/health")
    req = urllib.request.urlopen(env["url"] + "api/v1/timeline?" + urllib.parse.urlencode({"collection": "products", "id": HOSTILE_ID}))
    wire = req.read()
    assert all(b < 0x80 for b in wire) and b"\x1b" not in wire and b"\\u001b" in wire.lower()
    assert "\\u202e" in wire.decode().lower() and text


def test_http_safety(env):
    status, hdrs, _ = get(env, "/")
    assert status == 200 and hdrs["Content-Type"].startswith("text/html")
    csp = hdrs["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert hdrs["X-Content-Type-Options"] == "nosniff" and hdrs["X-Frame-Options"] == "DENY"
    status, _, page = get(env, "/")
    assert "<script src=\"/app.js\"" in page and not re.search(r"<script>|<script [^>]*>[^<]", page)
    status, hdrs, _ = get(env, "/app.js")
    assert status == 200 and not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", _)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, hdrs, body = get(env, "/api/v1/health", method=method, data=b"x" if method != "DELETE" else None)
        assert status == 405 and hdrs["Allow"] == "GET", method
    status, _, body = get(env, "/api/v1/health", headers={"Content-Length": "3"}, data=b"abc", method="GET")
    assert status == 413
    status, _, body = get(env, "/api/v1/documents", {"collection": "x" * 5000})
    assert status == 400
    status, _, body = get(env, "/api/v1/documents", [("collection", "a"), ("collection", "b")])
    assert status == 400 and "twice" in body["error"]["message"]
    status, _, body = get(env, "/api/v1/timeline", {"collection": "products", "id": "sku-1", "limit": "100000"})
    assert status == 400
    status, _, _ = get(env, "/api/v1/nope")
    assert status == 404
    status, _, _ = get(env, "/etc/passwd")
    assert status == 404
    # DNS rebinding: another Host is refused while on loopback
    status, _, body = get(env, "/api/v1/health", headers={"Host": "evil.example:%d" % env["port"]})
    assert status == 421
    # a request line beyond the connection's memory is refused, the server goes on
    with socket.create_connection(("127.0.0.1", env["port"]), timeout=10) as s:
        s.sendall(b"GET /api/v1/health?" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = s.recv(200)
    assert reply.startswith(b"HTTP/1.1 4"), reply
    assert api(env, "health")["ok"] is True


def test_auth(env, tmp_path):
    token = "t0k3n-" + uuid.uuid4().hex
    f = tmp_path / "auth"
    f.write_text("bearer %s\n" % token)
    os.chmod(f, 0o644)
    p = subprocess.run([CLI, "serve", "--listen", "127.0.0.1:0", "--uri", env["uri"], "--db", env["db"], "--auth-file", str(f)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "readable by others" in p.stderr and token not in p.stderr
    os.chmod(f, 0o600)
    srv = Server(env["uri"], env["db"], ["--auth-file", str(f)], quiet=False)
    try:
        status, hdrs, _ = get(srv.url, "/api/v1/health")
        assert status == 401 and hdrs["WWW-Authenticate"].startswith("Bearer")
        assert get(srv.url, "/api/v1/health", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert get(srv.url, "/api/v1/health", headers={"Authorization": "Bearer " + token})[0] == 200
        assert get(srv.url, "/")[0] == 200  # the UI's files hold no data
    finally:
        log = srv.stop()
    assert "GET /api/v1/health 401" in log and "GET /api/v1/health 200" in log and token not in log
    f.write_text("basic ann:s3cret-pw\n")
    srv = Server(env["uri"], env["db"], ["--auth-file", str(f)], quiet=False)
    try:
        status, hdrs, _ = get(srv.url, "/api/v1/health")
        assert status == 401 and hdrs["WWW-Authenticate"].startswith("Basic")
        import base64
        good = "Basic " + base64.b64encode(b"ann:s3cret-pw").decode()
        bad = "Basic " + base64.b64encode(b"ann:wrong").decode()
        assert get(srv.url, "/api/v1/health", headers={"Authorization": bad})[0] == 401
        assert get(srv.url, "/api/v1/health", headers={"Authorization": good})[0] == 200
    finally:
        log = srv.stop()
    assert "GET /api/v1/health 200" in log and "s3cret" not in log and "YW5uOnMzY3JldC1wdw" not in log


def test_usage(env):
    p = subprocess.run([CLI, "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "--listen" in p.stdout
    for bad in (["--listen", "localhost:80"], ["--listen", "127.0.0.1"], ["--listen", "127.0.0.1:70000"], ["--bogus"]):
        p = subprocess.run([CLI, "serve", "--uri", env["uri"], "--db", env["db"], *bad], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (bad, p.stderr)
    # [serve] listen from the configuration file
    fd, cfg = tempfile.mkstemp(suffix=".ini")
    with os.fdopen(fd, "w") as f:
        f.write("[mongodb]\nuri = %s\ndatabase = %s\n[serve]\nlisten = 127.0.0.1:0\n" % (env["uri"], env["db"]))
    try:
        proc = subprocess.Popen([CLI, "serve", "--config", cfg, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        proc.terminate()
        assert proc.wait(30) == 0 and re.match(r"changetrail serve: http://127\.0\.0\.1:\d+/ \(auth: none\)", line), line
    finally:
        os.unlink(cfg)


def test_timeline_of_10000_versions_api_time(env):
    t = api(env, "timeline", collection="perf", id=PERF_ID)
    assert t["current_version"] == PERF_VERSIONS and len(t["records"]) == 50
    assert [r["version"] for r in t["records"]] == list(range(PERF_VERSIONS, PERF_VERSIONS - 50, -1))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        api(env, "timeline", collection="perf", id=PERF_ID)
        times.append((time.perf_counter() - t0) * 1000)
    mid = api(env, "timeline", collection="perf", id=PERF_ID, before=5001)
    assert mid["records"][0]["version"] == 5000 and mid["next_before"] == 4951
    t0 = time.perf_counter()
    api(env, "timeline", collection="perf", id=PERF_ID, before=5001)
    mid_ms = (time.perf_counter() - t0) * 1000
    med = statistics.median(times)
    print("\nTIMING timeline API, document with %d versions, page of 50: median %.1f ms (min %.1f, max %.1f); "
          "page at v5000: %.1f ms" % (PERF_VERSIONS, med, min(times), max(times), mid_ms))
    assert med < PAGE_BUDGET_MS
    t0 = time.perf_counter()
    v = api(env, "version", collection="perf", id=PERF_ID, version=PERF_VERSIONS - 1)
    print("TIMING version API (v%d of %d, with the diff to the current state): %.1f ms"
          % (PERF_VERSIONS - 1, PERF_VERSIONS, (time.perf_counter() - t0) * 1000))
    assert v["state"]["doc"]["n"] == PERF_VERSIONS - 2


# ---- the UI in headless Chromium -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    b, d = chromium_paths()
    profile = tempfile.mkdtemp(prefix="ctweb-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = b
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--user-data-dir=" + profile, "--window-size=1280,900"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(executable_path=d), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_ready(drv, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(drv, timeout, poll_frequency=0.02).until(lambda d: d.execute_script("return document.body && document.body.dataset.ready === '1'"))


def open_page(drv, env, frag):
    drv.get(env["url"] + "#" + frag)
    drv.execute_script("document.body.dataset.ready = '0'; window.dispatchEvent(new HashChangeEvent('hashchange'));")
    wait_ready(drv)


def shot(drv, name):
    d = os.environ.get("CT_WEB_SCREENSHOTS")
    if d:
        os.makedirs(d, exist_ok=True)
        drv.save_screenshot(os.path.join(d, name + ".png"))


def no_console_errors(drv):
    try:
        logs = drv.get_log("browser")
    except Exception:
        return
    bad = [x for x in logs if x.get("level") == "SEVERE" and "favicon" not in x.get("message", "")]
    assert not bad, bad


def test_browser_search_to_version_and_context(env, browser):
    from selenium.webdriver.common.by import By
    drv = browser
    open_page(drv, env, "/")
    assert drv.find_element(By.ID, "title").text == "Search the history"
    drv.find_element(By.ID, "q-collection").send_keys("products")
    drv.find_element(By.ID, "q-prefix").send_keys("sku")
    drv.execute_script("document.body.dataset.ready = '0'")
    drv.find_element(By.ID, "search-go").click()
    wait_ready(drv)
    rows = drv.find_elements(By.CSS_SELECTOR, "#documents tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["sku-1", "sku-2"]
    assert "deleted" in rows[1].text
    shot(drv, "search")
    drv.execute_script("document.body.dataset.ready = '0'")
    rows[0].find_element(By.CSS_SELECTOR, "a.doc-link").click()
    wait_ready(drv)
    assert drv.find_element(By.ID, "title").text == "products/sku-1"
    recs = drv.find_elements(By.CSS_SELECTOR, "#timeline .record")
    assert [r.get_attribute("data-version") for r in recs] == ["3", "2", "1"]
    v2 = recs[1]
    assert "bob" in v2.text and C2 in v2.text
    cells = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in v2.find_elements(By.CSS_SELECTOR, "table.fields tbody tr")]
    assert ["~ changed", "price.amount", "9.5", "8.0"] in cells
    assert ["~ changed", "qty", "10", "7"] in cells
    assert ["+ added", "tags[0]", "", '"sale"'] in cells
    drv.execute_script("document.body.dataset.ready = '0'")
    drv.find_element(By.ID, "verify-go").click()
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(drv, 10).until(lambda d: d.find_elements(By.ID, "verify-status"))
    assert drv.find_element(By.ID, "verify-status").text == "chain verified: 3 record(s)"
    shot(drv, "timeline")
    # to version 1 through the record's link, then the picker
    drv.execute_script("document.body.dataset.ready = '0'")
    recs[2].find_element(By.LINK_TEXT, "document at v1").click()
    wait_ready(drv)
    assert drv.find_element(By.ID, "title").text == "products/sku-1 at version 1"
    assert json.loads(drv.find_element(By.ID, "version-doc").text) == W1
    diff = drv.find_element(By.ID, "diff-current").text
    assert '"Widget"' in diff and '"Widget Pro"' in diff
    picker = drv.find_element(By.ID, "version-picker")
    picker.clear()
    picker.send_keys("2")
    drv.execute_script("document.body.dataset.ready = '0'")
    drv.find_element(By.CSS_SELECTOR, "#picker-form button").click()
    wait_ready(drv)
    assert json.loads(drv.find_element(By.ID, "version-doc").text) == W2
    shot(drv, "version")
    # to the context of version 1 (across collections)
    open_page(drv, env, "/doc?c=products&id=sku-1")
    drv.execute_script("document.body.dataset.ready = '0'")
    drv.find_element(By.CSS_SELECTOR, '#timeline .record[data-version="1"]').find_element(By.LINK_TEXT, C1).click()
    wait_ready(drv)
    assert drv.find_element(By.ID, "title").text == "Context " + C1
    assert drv.find_element(By.ID, "context-status").text == "complete"
    assert json.loads(drv.find_element(By.ID, "context-meta").text) == {"request": "POST /orders"}
    shown = [r.text for r in drv.find_elements(By.CSS_SELECTOR, "#context-records .record")]
    assert len(shown) == 3 and "orders/o-1" in shown[1] and "products/sku-2" in shown[2]
    shot(drv, "context")
    # an actor's page
    open_page(drv, env, "/actor?name=bob")
    assert len(drv.find_elements(By.CSS_SELECTOR, "#actor-records .record")) == 2
    shot(drv, "actor")
    # a deleted document
    open_page(drv, env, "/doc?c=products&id=sku-2")
    assert drv.find_element(By.ID, "deleted").text == "deleted"
    no_console_errors(drv)


def test_browser_hostile_values_render_as_text(env, browser):
    from selenium.webdriver.common.by import By
    drv = browser
    q = urllib.parse.urlencode({"c": "products", "id": HOSTILE_ID})
    pages = ["/doc?" + q, "/version?" + urllib.parse.urlencode({"c": "products", "id": HOSTILE_ID, "v": 1}),
             "/context?id=" + CX, "/actor?" + urllib.parse.urlencode({"name": HOSTILE_ACTOR}),
             "/?" + urllib.parse.urlencode({"collection": "products"})]
    for frag in pages:
        open_page(drv, env, frag)
        main = drv.find_element(By.ID, "main")
        # nothing ran, nothing became markup
        assert drv.execute_script("return window.__xss === undefined"), frag
        assert main.find_elements(By.TAG_NAME, "script") == [] and main.find_elements(By.TAG_NAME, "img") == [], frag
        assert main.find_elements(By.TAG_NAME, "b") == [] and main.find_elements(By.TAG_NAME, "i") == [], frag
        text = main.text
        assert "<img src=x" in text, (frag, text[:500])
        if "actor" in frag or "doc" in frag:
            assert XSS_SCRIPT in text
        if "version" in frag or "doc" in frag or "context" in frag:
            # terminal escapes and bidi controls shown as escapes, never raw
            assert "\x1b" not in text and "\u202e" not in text
            assert "\\u001b[2j" in text.lower()
        if frag.startswith("/doc"):
            shot(drv, "hostile")
    no_console_errors(drv)


def test_browser_bearer_token(env, browser, tmp_path):
    from selenium.webdriver.common.by import By
    token = "ui-" + uuid.uuid4().hex
    f = tmp_path / "auth"
    f.write_text("bearer %s\n" % token)
    os.chmod(f, 0o600)
    srv = Server(env["uri"], env["db"], ["--auth-file", str(f)])
    drv = browser
    try:
        open_page(drv, {"url": srv.url}, "/doc?c=products&id=sku-1")
        assert drv.find_element(By.ID, "title").text == "Authentication required"
        drv.find_element(By.ID, "token").send_keys(token)
        drv.execute_script("document.body.dataset.ready = '0'")
        drv.find_element(By.CSS_SELECTOR, "#token-form button").click()
        wait_ready(drv)
        assert drv.find_element(By.ID, "title").text == "products/sku-1"
        assert len(drv.find_elements(By.CSS_SELECTOR, "#timeline .record")) == 3
    finally:
        drv.execute_script("sessionStorage.clear()")
        srv.stop()


def test_browser_page_of_10000_versions(env, browser):
    from selenium.webdriver.common.by import By
    drv = browser
    open_page(drv, env, "/")
    times = []
    for _ in range(5):
        drv.execute_script("document.body.dataset.ready = '0'; window.__t0 = performance.now();"
                           "location.hash = '#/doc?c=perf&id=%s&n=' + Math.random();" % PERF_ID)
        wait_ready(drv)
        times.append(drv.execute_script("return window.__ctReadyAt - window.__t0"))
    recs = drv.find_elements(By.CSS_SELECTOR, "#timeline .record")
    assert len(recs) == 50 and recs[0].get_attribute("data-version") == str(PERF_VERSIONS)
    assert drv.find_element(By.CSS_SELECTOR, "a.older")
    med = statistics.median(times)
    print("\nTIMING timeline page in Chromium (fetch + render 50 versions of %d): median %.1f ms (max %.1f)"
          % (PERF_VERSIONS, med, max(times)))
    assert med < PAGE_BUDGET_MS


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v", "-s", "-p", "no:cacheprovider"]))
