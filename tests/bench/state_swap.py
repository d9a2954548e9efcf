#!/usr/bin/env python3
"""state_swap.py - what one state write costs the server, by filter and index.

The figures behind docs/performance.md ("2026-12-07, the same command on the
quiet machine"): a `state`-like collection of N documents of ~1 KB (with the
(collection, document_id) index), then 2000 of them replaced in unordered
bulks of 500: by {_id} with and without the `id_version` (_id, version)
unique index the consumer creates, by {_id, version} (the consumer's
compare-and-swap), and the `$in` read of their versions that the swap's
first round no longer needs. One line per figure.

usage: state_swap.py --uri URI [--docs N]   (database `ct_state_swap`, dropped at the end)
"""
import argparse
import time

import pymongo
from pymongo import ReplaceOne

DOC = {"x": "y" * 900, "n": 1}
SWAPS = 2000


def fill(db, n, id_version):
    db.drop_collection("s")
    s = db["s"]
    if id_version:
        s.create_index([("_id", 1), ("version", 1)], unique=True, name="id_version")
    s.create_index([("collection", 1), ("document_id", 1)], name="cd")
    for i in range(0, n, 1000):
        s.insert_many([state(j, 1) for j in range(i, min(i + 1000, n))], ordered=False)
    return s


def state(j, v):
    return {"_id": f"k{j}", "version": v, "collection": "c", "document_id": f"d{j}", "doc": DOC}


def rate(label, s, ops):
    t = time.time()
    for i in range(0, len(ops), 500):
        s.bulk_write(ops[i:i + 500], ordered=False)
    print(f"{label}: {len(ops) / (time.time() - t):.0f}/s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--docs", type=int, default=20000)
    a = ap.parse_args()
    client = pymongo.MongoClient(a.uri)
    db = client["ct_state_swap"]
    picks = range(0, a.docs, max(1, a.docs // SWAPS))
    try:
        s = fill(db, a.docs, True)
        rate("replaceOne by {_id}, id_version index present", s, [ReplaceOne({"_id": f"k{j}"}, state(j, 2)) for j in picks])
        rate("replaceOne by {_id, version}", s, [ReplaceOne({"_id": f"k{j}", "version": 2}, state(j, 3)) for j in picks])
        s = fill(db, a.docs, False)
        rate("replaceOne by {_id}, no id_version index", s, [ReplaceOne({"_id": f"k{j}"}, state(j, 2)) for j in picks])
        ids = [f"k{j}" for j in picks]
        t = time.time()
        for i in range(0, len(ids), 500):
            list(s.find({"_id": {"$in": ids[i:i + 500]}}, {"version": 1}))
        print(f"read of the versions by $in: {len(ids) / (time.time() - t):.0f}/s", flush=True)
    finally:
        client.drop_database("ct_state_swap")


if __name__ == "__main__":
    main()
