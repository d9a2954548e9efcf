#!/usr/bin/env python3
"""ferretdb_ops.py - what the consumer's writes cost on the server, operation by operation.

The figures behind docs/performance.md ("Where the time goes") and
docs/storage.md (the packed state journal, context parts): for collections
of 2000, 10000 and 20000 documents of ~1 KB, the time of one find_one and
one delete_one and one replace_one by _id (at the end of the table, where
a scan finds them last), an insert of 500, a delete of 500 and of all ids
by $in, and the server's explain of a find by _id; then a state journal
record of 2000 states stored and removed as nested documents and packed
into one binary field.

usage: ferretdb_ops.py [--uri mongodb://127.0.0.1:37017/] [--sizes 2000,10000,20000]
Prints one key=value line per figure. Uses (and drops) the database
ct_bench_ops. Needs pymongo (tests/requirements.txt).
"""
import argparse
import sys
import time

import bson
import pymongo

PAD = "x" * 900


def doc(i, v):
    return {"_id": "items/d%08d" % i, "version": v, "doc": {"pad": PAD, "i": i, "tags": ["a", "b"]}}


def timed(f):
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000.0


def out(**kv):
    print(" ".join("%s=%s" % (k, ("%.1f" % v) if isinstance(v, float) else v) for k, v in kv.items()))
    sys.stdout.flush()


def per_size(db, n):
    st = db["state"]
    st.drop()
    for s in range(0, n, 1000):
        st.insert_many([doc(i, 1) for i in range(s, min(s + 1000, n))], ordered=False)
    last = ["items/d%08d" % i for i in range(n - 20, n)]
    ids500 = ["items/d%08d" % i for i in range(0, n, max(n // 500, 1))][:500]
    plan = db.command("explain", {"find": "state", "filter": {"_id": last[0]}}).get("queryPlanner", {})
    out(collection_docs=n, op="explain_find_by_id", plan='"%s"' % str(plan.get("Plan", plan))[:160].replace('"', "'"))
    out(collection_docs=n, op="find_one_by_id_last", ms=timed(lambda: [st.find_one({"_id": k}) for k in last]) / len(last))
    out(collection_docs=n, op="delete_one_by_id_last",
        ms=timed(lambda: [st.delete_one({"_id": k}) for k in last]) / len(last))
    st.insert_many([doc(int(k[7:]), 2) for k in last], ordered=False)
    out(collection_docs=n, op="replace_one_by_id_last",
        ms=timed(lambda: [st.replace_one({"_id": k}, doc(int(k[7:]), 3)) for k in last]) / len(last))
    out(collection_docs=n, op="delete_many_in_500", ms=timed(lambda: st.delete_many({"_id": {"$in": ids500}})))
    out(collection_docs=n, op="insert_500",
        ms=timed(lambda: st.insert_many([doc(int(k[7:]), 4) for k in ids500], ordered=False)))
    every = ["items/d%08d" % i for i in range(n)]
    out(collection_docs=n, op="delete_many_in_all", ms=timed(lambda: st.delete_many({"_id": {"$in": every}})))


def journal(db, n=2000):
    j = db["state_journal"]
    states = [doc(i, 2) for i in range(n)]
    packed = bson.Binary(bson.encode({str(i): d for i, d in enumerate(states)}))
    for form, rec in (("array", {"_id": "j1", "states": states}), ("packed", {"_id": "j1", "states": packed})):
        ins = timed(lambda: j.insert_one(rec))
        rm = timed(lambda: j.delete_one({"_id": "j1"}))
        out(op="state_journal", states=n, form=form, insert_ms=ins, delete_ms=rm, total_ms=ins + rm)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default="mongodb://127.0.0.1:37017/")
    ap.add_argument("--sizes", default="2000,10000,20000")
    a = ap.parse_args()
    client = pymongo.MongoClient(a.uri, serverSelectionTimeoutMS=5000)
    client.drop_database("ct_bench_ops")
    db = client["ct_bench_ops"]
    try:
        for n in (int(x) for x in a.sizes.split(",")):
            per_size(db, n)
        journal(db)
    finally:
        client.drop_database("ct_bench_ops")


if __name__ == "__main__":
    main()
