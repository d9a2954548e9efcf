#!/usr/bin/env python3
"""peer_python.py - the Python peer of the side-by-side benchmark (issue #7).

What a team would write in Python to get changetrail's history the way
mongoengine-history computes and stores patches: a confluent-kafka consumer
reads changetrail events in batches, diffs each document against its
previous state with dictdiffer.diff (previous states kept in a dict, loaded
from the MongoDB `state` collection with one $in query per batch on a
miss), writes the history records with one unordered insert_many and the
states with one bulk write per batch, and commits the offsets only after
MongoDB acknowledged both. Redelivered events are harmless (history _id is
the event id; duplicate-key errors are ignored).

It is written to be fair to Python: batched consume, one bulk per
collection per batch, no per-event round trip, the standard json module.
`changes` is stored as JSON text (dictdiffer's triples are nested arrays,
which FerretDB 1.24 refuses; changetrail stores them as text too), the
state's document as BSON. History has the same unique index changetrail
creates on (collection, document_id, version).
What it does not do that changetrail does: validate events against the
schema, hash chains, contexts, a DLQ, tracked/excluded fields, the crash-safe
journal around the state swap.

  --null-sink          everything but MongoDB (no reads, no writes)
  --state-write swap   delete_many($in) + insert_many per batch (default; the
                       same workaround changetrail uses on FerretDB 1.24, whose
                       update statements scan the collection one by one)
  --state-write replace  bulk_write of ReplaceOne(upsert=True), the idiomatic
                       MongoDB way (stalls on FerretDB: see docs/performance.md)

Stops on SIGTERM/SIGINT after writing and committing the batch in hand, or
after --exit-on-idle-ms without a message. Prints one key=value line at exit.
"""
import argparse
import json
import signal
import sys
import time

import dictdiffer
from confluent_kafka import Consumer, KafkaError, TopicPartition

stop = False


def on_signal(_sig, _frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--uri", default="mongodb://127.0.0.1:27017/")
    ap.add_argument("--db", default="peer_python")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--batch-ms", type=int, default=200)
    ap.add_argument("--exit-on-idle-ms", type=int, default=0)
    ap.add_argument("--null-sink", action="store_true")
    ap.add_argument("--state-write", choices=("swap", "replace"), default="swap")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    history = states = None
    if not args.null_sink:
        from pymongo import MongoClient, ReplaceOne
        from pymongo.errors import BulkWriteError

        client = MongoClient(args.uri, serverSelectionTimeoutMS=3000)
        db = client[args.db]
        history, states = db["history"], db["state"]
        history.create_index([("collection", 1), ("document_id", 1), ("version", 1)], unique=True)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    })
    consumer.subscribe([args.topic])

    cache = {}  # "collection/document_id" -> {"v": version, "doc": dict}
    events = persisted = empty = bad = 0
    last_msg = time.monotonic()
    started = time.monotonic()

    def insert_ignoring_duplicates(coll, docs):
        try:
            coll.insert_many(docs, ordered=False)
        except BulkWriteError as e:  # redelivery: the record is already there
            if any(w.get("code") != 11000 for w in e.details.get("writeErrors", [])):
                raise

    while not stop:
        msgs = consumer.consume(num_messages=args.batch_size, timeout=args.batch_ms / 1000.0)
        now = time.monotonic()
        if not msgs:
            if args.exit_on_idle_ms and (now - last_msg) * 1000 >= args.exit_on_idle_ms:
                break
            continue
        last_msg = now
        parsed = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"peer: kafka error {m.error()}", file=sys.stderr)
                continue
            try:
                ev = json.loads(m.value())
                key = ev["collection"] + "/" + ev["document_id"]
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            parsed.append((key, ev, m))
        # previous states missing from the cache: one query per batch
        if states is not None:
            missing = list({k for k, _, _ in parsed if k not in cache})
            if missing:
                for s in states.find({"_id": {"$in": missing}}):
                    cache[s["_id"]] = {"v": s["version"], "doc": s["doc"]}
        records, touched = [], {}
        for key, ev, m in parsed:
            prev = cache.get(key)
            before = prev["doc"] if prev else {}
            after = {} if ev["op"] == "delete" else ev.get("after", {})
            changes = list(dictdiffer.diff(before, after))
            events += 1
            if not changes:
                empty += 1
                continue
            version = (prev["v"] if prev else 0) + 1
            records.append({
                "_id": ev["event_id"], "collection": ev["collection"], "document_id": ev["document_id"],
                "version": version, "op": ev["op"], "ts": ev["ts"], "actor": ev.get("actor"),
                "changes": json.dumps(changes, separators=(",", ":")), "kafka": {"topic": m.topic(), "partition": m.partition(), "offset": m.offset()},
            })
            cache[key] = {"v": version, "doc": after}
            touched[key] = {"_id": key, "version": version, "doc": after, "deleted": ev["op"] == "delete"}
        if history is not None and records:
            insert_ignoring_duplicates(history, records)
            docs = list(touched.values())
            if args.state_write == "swap":
                states.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
                insert_ignoring_duplicates(states, docs)
            else:
                states.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False)
        persisted += len(records)
        # commit after the write: next offset of each partition seen in the batch
        high = {}
        for m in msgs:
            if not m.error():
                high[(m.topic(), m.partition())] = m.offset() + 1
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in high.items()], asynchronous=False)
    consumer.close()
    secs = time.monotonic() - started
    print(f"peer=python events={events} persisted={persisted} empty={empty} bad={bad} "
          f"seconds={secs:.2f} null_sink={str(args.null_sink).lower()}", file=sys.stderr)


if __name__ == "__main__":
    main()
