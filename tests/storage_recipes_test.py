#!/usr/bin/env python3
"""The recipes of docs/storage.md ("## Recipes (mongosh, pymongo)"), run as written.

Raw change events are produced with kcat (or confluent-kafka when kcat is not
installed) to a unique topic; the real consumer daemon writes them into a
unique database on the local MongoDB server (deploy/local/services.sh); then
every recipe of the section runs against that database through pymongo:
the Python ones executed as they are (the [setup] one with the test's URI
and database), the mongosh ones translated call for call (db.C.find(F).sort(S),
findOne, aggregate, getIndexes; ISODate("...") as a BSON date). Each recipe's
result is checked against what the events imply; a recipe without an
expectation here fails the test, so none goes unrun.

Run by ctest (tests/scripts/recipes.cmake): exit 77 (skipped) without
CT_KAFKA_BOOTSTRAP / CT_MONGODB_URI or pymongo, unless CT_TEST_REQUIRE_SERVERS=1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("CT_SOURCE_DIR", os.path.dirname(HERE))
DOC = os.path.join(SOURCE, "docs", "storage.md")

C1 = "0190c6a4-0000-7000-8000-00000000c001"
C2 = "0190c6a4-0000-7000-8000-00000000c0de"
W1 = {"name": "Widget", "qty": 10, "price": {"amount": 9.5}, "tags": [], "a.b": 1, "$x": 3}
W2 = dict(W1, qty=7, price={"amount": 8.0}, tags=["sale"])
W3 = dict(W2, name="Widget 2")
W4 = dict(W3, qty=4)
G1 = {"name": "Gadget", "qty": 3, "price": {"amount": 2.0}, "tags": [], "a.b": 2, "$x": 9}
G2 = dict(G1, name="Gadget 2")
# (document_id, op, ts, actor, context, after)
EVENTS = [
    ("sku-1", "insert", "2024-05-01T10:00:01.000000Z", "alice", C1, W1),
    ("sku-2", "insert", "2024-05-01T10:00:02.000000Z", "alice", C1, G1),
    ("sku-1", "update", "2024-05-01T10:05:00.000000Z", "bob", C2, W2),
    ("sku-3", "insert", "2024-05-01T10:05:01.000000Z", "bob", C2, {"name": "Gone", "qty": 1}),
    ("sku-1", "update", "2024-05-01T10:10:00.000000Z", "bob", None, W3),
    ("sku-3", "delete", "2024-05-01T10:30:00.000000Z", "bob", None, None),
    ("sku-1", "update", "2024-05-01T12:00:00.000000Z", "carol", None, W4),
    ("sku-2", "update", "2024-05-02T09:00:00.000000Z", "alice", None, G2),
]
TTL_DAYS = 3650


def servers_or_exit():
    """Exit 77 (ctest: skipped) when the servers or pymongo are missing, unless they are required."""
    need = os.environ.get("CT_TEST_REQUIRE_SERVERS") == "1"
    missing = [v for v in ("CT_KAFKA_BOOTSTRAP", "CT_MONGODB_URI") if not os.environ.get(v)]
    try:
        import pymongo  # noqa: F401
    except ImportError:
        missing.append("pymongo (tests/requirements.txt)")
    try:
        import pytest  # noqa: F401
    except ImportError:
        missing.append("pytest (tests/requirements.txt)")
    if missing:
        print("SKIP: missing " + ", ".join(missing), file=sys.stderr)
        sys.exit(1 if need else 77)


if __name__ == "__main__":
    servers_or_exit()  # before pytest is imported: it may be what is missing

import pytest  # noqa: E402


# ---- the recipes of docs/storage.md ------------------------------------------------


def recipes():
    """[(name, lang, code)] of the Recipes section, in document order."""
    text = open(DOC, encoding="utf-8").read()
    start = text.index("## Recipes (mongosh, pymongo)")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    out = []
    for lang, body in re.findall(r"```(js|python)\n(.*?)```", section, re.S):
        if lang == "python":
            m = re.match(r"# \[(\w+)\]", body)
            assert m, "a python recipe must start with '# [name]': " + body
            out.append((m.group(1), "python", body))
            continue
        name = None
        for line in body.splitlines():
            m = re.match(r"// \[(\w+)\]", line)
            if m:
                name = m.group(1)
            elif line.startswith("db."):
                assert name, "a mongosh recipe must follow a '// [name]' line: " + line
                out.append((name, "js", line))
                name = None
    return out


def split_top(s, sep=","):
    """Splits s on `sep` outside brackets and strings."""
    parts, depth, cur, quote, esc = [], 0, [], None, False
    for ch in s:
        if quote:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def js_value(text):
    """A mongosh argument written as JSON, ISODate("...") included, as Python/BSON values."""
    from bson import json_util
    text = re.sub(r'ISODate\("([^"]+)"\)', r'{"$date": "\1"}', text)
    return json_util.loads(text)


def js_calls(line):
    """db.C.m1(args).m2(args)... -> (C, [(m1, [args]), (m2, [args]), ...])."""
    m = re.match(r"db\.(\w+)\.", line)
    assert m, line
    coll, rest, calls = m.group(1), line[m.end():], []
    while rest:
        m = re.match(r"\.?(\w+)\(", rest)
        assert m, "cannot read mongosh call at: " + rest
        depth, i, quote = 1, m.end(), None
        while depth:
            ch = rest[i]
            if quote:
                if ch == "\\":
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            i += 1
        args = rest[m.end():i - 1]
        calls.append((m.group(1), [js_value(a) for a in split_top(args)]))
        rest = rest[i:]
    return coll, calls


def run_js(db, line):
    coll, calls = js_calls(line)
    c = db[coll]
    (method, args), chain = calls[0], calls[1:]
    if method == "find":
        cur = c.find(*args)
        for m, a in chain:
            if m == "sort":
                cur = cur.sort(list(a[0].items()))
            elif m == "limit":
                cur = cur.limit(a[0])
            else:
                raise AssertionError("mongosh cursor method not translated: " + m)
        return list(cur)
    assert not chain, "only find() chains: " + line
    if method == "findOne":
        return c.find_one(*args)
    if method == "aggregate":
        return list(c.aggregate(*args))
    if method == "getIndexes":
        return list(c.list_indexes())
    if method == "countDocuments":
        return c.count_documents(*args)
    raise AssertionError("mongosh method not translated: " + method)


def run_python(code, uri, dbname):
    """The [setup] recipe (imports, db), with the test's URI and database, then `code`: its `result`."""
    env = {}
    for name, lang, setup in ALL:
        if (name, lang) == ("setup", "python"):
            setup = setup.replace('"mongodb://localhost:27017/"', repr(uri)).replace('["changetrail"]', "[%r]" % dbname)
            exec(compile(setup, DOC, "exec"), env)
    assert env["db"].name == dbname
    exec(compile(code, DOC, "exec"), env)  # the recipe as written in the docs
    return env.get("result")


# ---- what each recipe must give ------------------------------------------------------


def versions(docs):
    return [(d["document_id"], d["version"]) for d in docs]


def live_ids(docs):
    return sorted(d.get("_id", d.get("name")) for d in docs)


def expect_getfield(result):
    # MongoDB 5.0+: the product whose "a.b" is 1 / "$x" below 5 (sku-1 for both)
    assert [d["_id"] for d in result] == ["products/sku-1"]


EXPECT = {
    "setup": lambda r: None,
    "qty_records": lambda r: versions(r) == [("sku-1", 1), ("sku-1", 2), ("sku-1", 4)] or versions(r),
    "qty_changes": lambda r: versions(r) == [("sku-1", 2), ("sku-1", 4)] or versions(r),
    "qty_values": lambda r: r == [(2, 10, 7), (4, 7, 4)] or r,
    "low_stock": lambda r: sorted(d.get("_id") or d["name"] for d in r) in (
        ["products/sku-1", "products/sku-2"], ["Gadget 2", "Widget 2"]) or r,
    "actor_range": lambda r: versions(r) == [("sku-1", 2), ("sku-3", 1), ("sku-1", 3), ("sku-3", 2)] or versions(r),
    "per_day": lambda r: [(d["_id"]["day"], d["_id"]["op"], d["n"]) for d in r] == [
        ("2024-05-01", "delete", 1), ("2024-05-01", "insert", 3), ("2024-05-01", "update", 3),
        ("2024-05-02", "update", 1)] or r,
    "context_doc": lambda r: (r["_id"] == C2 and r["actor"] == "bob" and r["event_count"] == 2 and
                              r["collections"] == ["products"] and isinstance(r["first_ts"], datetime) and
                              r["metadata_seen"] == {"request": "PATCH /products/sku-1"}) or r,
    "context_records": lambda r: ["%s/%s v%d" % (d["collection"], d["document_id"], d["version"])
                                  if isinstance(d, dict) else d for d in r] == ["products/sku-1 v2",
                                                                               "products/sku-3 v1"] or r,
    "ttl_index": lambda r: (r == [TTL_DAYS] or
                            [i.get("expireAfterSeconds") for i in r if isinstance(i, dict) and i.get("name") == "ts_ttl"]
                            == [TTL_DAYS * 86400]) or r,
    "pairs_dot": lambda r: [d["_id"] for d in r] == ["products/sku-1"] or r,
    "pairs_dollar": lambda r: [d["_id"] for d in r] == ["products/sku-1"] or r,
}
GETFIELD = {"getfield_dot", "getfield_dollar"}


# ---- the database the recipes run on ------------------------------------------------------


def produce(bootstrap, topic):
    lines = []
    for i, (doc_id, op, ts, actor, ctx, after) in enumerate(EVENTS, 1):
        ev = {"schema": "changetrail.event.v1", "event_id": "0190c6a4-0000-7000-8000-%012x" % i, "ts": ts,
              "source": "recipes", "collection": "products", "document_id": doc_id, "op": op, "actor": actor}
        if ctx:
            ev["context"] = {"id": ctx, "metadata": {"request": "PATCH /products/sku-1" if ctx == C2 else "POST"}}
        if after is not None:
            ev["after"] = after
        lines.append("products/%s\t%s" % (doc_id, json.dumps(ev, separators=(",", ":"))))
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat:  # raw bytes, as an operator would send them
        subprocess.run([kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "\t"], input="\n".join(lines) + "\n",
                       text=True, check=True, timeout=60)
        return
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    for line in lines:
        key, value = line.split("\t", 1)
        p.produce(topic, value=value.encode(), key=key.encode())
    assert p.flush(30) == 0


def consumer_binary():
    b = os.environ.get("CT_CONSUMER_BIN")
    if b:
        return b
    return os.path.join(os.environ.get("CT_BINARY_DIR", os.path.join(SOURCE, "build")), "consumer",
                        "changetrail-consumer")




@pytest.fixture(scope="module")
def env():
    from pymongo import MongoClient
    bootstrap, uri = os.environ["CT_KAFKA_BOOTSTRAP"], os.environ["CT_MONGODB_URI"]
    tag = "ctrecipes_%d_%s" % (os.getpid(), uuid.uuid4().hex[:8])
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
        f.write("[kafka]\nbootstrap.servers = %s\nsession.timeout.ms = 6000\n"
                "topic.metadata.refresh.interval.ms = 1000\n"
                "[mongodb]\nuri = %s\ndatabase = %s\nhistory_ttl_days = %d\n"
                "[consumer]\ntopic = %s\ndlq_topic = %s.dlq\ngroup_id = g-%s\nbatch_ms = 50\n"
                "exit_on_idle_ms = 1500\nshutdown_timeout_ms = 10000\nlog_level = warn\n[http]\nlisten =\n"
                % (bootstrap, uri, tag, TTL_DAYS, tag, tag, tag))
        config = f.name
    try:
        produce(bootstrap, tag)
        t0 = time.time()
        subprocess.run([consumer_binary(), "--config", config], check=True, timeout=180)
        db = client[tag]
        assert db.history.count_documents({}) == len(EVENTS), "the consumer wrote %d records in %.1fs" % (
            db.history.count_documents({}), time.time() - t0)
        yield uri, tag, db
    finally:
        client.drop_database(tag)
        client.close()
        os.unlink(config)


ALL = recipes()


def test_every_recipe_is_checked():
    names = {n for n, _, _ in ALL}
    assert names - set(EXPECT) - GETFIELD == set(), "recipes without an expectation in this test"
    assert set(EXPECT) - names == set(), "expectations of recipes no longer in docs/storage.md"
    assert {"qty_records", "low_stock", "actor_range", "context_records", "ttl_index"} <= names


def test_stored_form_is_native(env):
    """What the recipes rely on: ts a BSON date beside its exact µs, changes documents with an array path."""
    _, _, db = env
    for r in db.history.find():
        assert isinstance(r["ts"], datetime)
        assert isinstance(r["ts_us"], int) and r["ts_us"] // 1000 == int(
            (r["ts"] - datetime(1970, 1, 1)).total_seconds() * 1000)
        assert r["changes"], r
        for c in r["changes"]:
            assert c["op"] in ("add", "remove", "change") and isinstance(c["path"], list), c
    s = db.state.find_one({"_id": "products/sku-1"})
    assert s["doc"]["price"]["amount"] == 8.0 and isinstance(s["doc"]["price"]["amount"], float)
    assert s["doc"]["qty"] == 4 and isinstance(s["doc"]["qty"], int)
    assert s["doc"]["a.b"] == 1 and s["doc"]["$x"] == 3


@pytest.mark.parametrize("name,lang,code", ALL, ids=["%s-%s" % (n, lang) for n, lang, _ in ALL])
def test_recipe(env, name, lang, code):
    from pymongo.errors import OperationFailure
    uri, dbname, db = env
    try:
        result = run_js(db, code) if lang == "js" else run_python(code, uri, dbname)
    except OperationFailure as e:
        # $getField is MongoDB 5.0+; the local server (mongo-java-server) does not know it, as documented
        if name in GETFIELD and "$getField" in str(e):
            return
        raise
    if name in GETFIELD:
        expect_getfield(result)
        return
    verdict = EXPECT[name](result)
    assert verdict is True or verdict is None, "%s (%s) gave %r" % (name, lang, verdict)


if __name__ == "__main__":
    sys.exit(pytest.main([os.path.abspath(__file__), "-q", "-p", "no:cacheprovider"]))
