"""The changetrail binding: error mapping and the C structs' layout (no
broker needed), and events emitted in nested contexts read back from the real
broker with confluent-kafka: keys, bodies, context ids and metadata, actors,
excluded fields, unchanged updates, delivery reports and per-thread contexts."""
import ctypes
import datetime
import decimal
import threading

import pytest

import changetrail
from changetrail import ChangetrailError, Producer, context, current_context_id

NOWHERE = "127.0.0.1:1"  # ct_producer_new does not wait for brokers


# ------------------------------------------------------------ no broker

def test_struct_layout_matches_the_headers():
    # x86-64/aarch64 LP64: ct_change is 3 pointers, long, pointer, pointer, long,
    # pointer, 7 pointers, int64, pointer = 18 slots of 8 bytes; op pads to 8.
    p = ctypes.sizeof(ctypes.c_void_p)
    assert ctypes.sizeof(changetrail._CtError) == 4 + 512
    assert ctypes.sizeof(changetrail._CtProducerStats) == 10 * 8
    if p == 8:
        assert ctypes.sizeof(changetrail._CtChange) == 18 * 8
        assert changetrail._CtChange.seq.offset == 16 * 8
        assert changetrail._CtChange.context.offset == 17 * 8
    assert changetrail.library_version().count(".") == 2


def test_unknown_config_key_raises_with_the_message():
    with pytest.raises(ChangetrailError) as ei:
        Producer({"source": "t", "no.such.key": "1"})
    e = ei.value
    assert e.code == changetrail.CT_ECONFIG and e.name == "CT_ECONFIG"
    assert "no.such.key" in e.message
    assert str(e).startswith("CT_ECONFIG: ")


def test_rejected_kafka_property_and_missing_source():
    with pytest.raises(ChangetrailError) as ei:
        Producer({"source": "t", "kafka.bootstrap.servers": NOWHERE, "kafka.no.such.property": "x"})
    assert ei.value.code == changetrail.CT_ECONFIG
    assert "no.such.property" in ei.value.message
    with pytest.raises(ChangetrailError) as ei:
        Producer({"kafka.bootstrap.servers": NOWHERE})
    assert ei.value.code == changetrail.CT_ECONFIG and "source" in ei.value.message


def test_emit_errors_name_the_problem():
    with Producer({"source": "t", "kafka.bootstrap.servers": NOWHERE}) as p:
        with pytest.raises(ChangetrailError) as ei:
            p.emit_insert("things", "1", '{"a":')
        assert ei.value.code == changetrail.CT_EPARSE
        with pytest.raises(ChangetrailError) as ei:
            p.emit_insert("a/b", "1", {"a": 1})
        assert ei.value.code == changetrail.CT_EINVAL and "collection" in ei.value.message
        with pytest.raises(ChangetrailError) as ei:
            p.emit_event("things", "1", None)
        assert ei.value.code == changetrail.CT_EINVAL and "label" in ei.value.message
        with pytest.raises(TypeError):
            p.emit_insert("things", "1", {"x": object()})
        st = p.stats()
        assert st["rejected"] == 3 and st["emitted"] == 0
        # (close() returns rd_kafka_outq_len after the flush, which may count a
        # pending broker request although no event was emitted: only its type is checked)
        assert isinstance(p.close(timeout=0), int)
    with pytest.raises(ChangetrailError):
        p.emit_insert("things", "1", {})


def test_context_without_broker_gives_ids_and_nests():
    p = Producer({"source": "t", "kafka.bootstrap.servers": NOWHERE})
    try:
        assert current_context_id() is None
        with context(p, user="u") as root:
            with p.context(step=2) as inner:
                assert inner == root == current_context_id()
        assert current_context_id() is None
    finally:
        p.close(timeout=0)


# ------------------------------------------------------------ real broker

def _producer(bootstrap, topic, **extra):
    conf = {"source": "pytest", "topic": topic, "kafka.bootstrap.servers": bootstrap,
            "kafka.linger.ms": 5, "track.accounts.exclude": "password,profile.ssn"}
    conf.update(extra)
    return conf


def test_nested_contexts_round_trip(bootstrap, topic, reader):
    with Producer(_producer(bootstrap, topic)) as p:
        outside = p.emit_insert("accounts", "a0", {"name": "before any context", "password": "x"})
        with context(p, user="alice", url="/accounts/a1") as root:
            ids = [p.emit_insert("accounts", "a1", {"name": "A", "password": "pw1",
                                                    "profile": {"ssn": "ssn-secret-4711", "city": "Oslo"},
                                                    "joined": datetime.date(2024, 5, 1),
                                                    "balance": decimal.Decimal("10.50")})]
            with context(p, step="inner") as inner:
                assert inner == root
                ids.append(p.emit_update("accounts", "a1", '{"name":"B","password":"pw2"}',
                                         before={"name": "A", "password": "pw1"}, seq=2))
                ids.append(p.emit_snapshot("accounts", "a2", {"name": "S"}, actor="scanner"))
                ids.append(p.emit_event("accounts", "a1", "exported"))
                ids.append(p.relation_add("accounts", "a1", "groups", "groups", "g1"))
                ids.append(p.relation_remove("accounts", "a1", "groups", "groups", "g1"))
                ids.append(p.emit_insert("addresses", "ad1", {"street": "x"}, parent=("accounts", "a1")))
            ids.append(p.emit_delete("accounts", "a1", before={"name": "B", "password": "pw2"}))
        p.flush(10)
        st = p.stats()
        assert st["delivered"] == st["emitted"] == 1 + 8 + 2  # + context_begin/end
        assert st["failed"] == 0 and st["in_flight"] == 0

    msgs = reader.read(topic, expect=11)
    assert len(msgs) == 11, [m["key"] for m in msgs]
    by_id = {m["value"]["event_id"]: m for m in msgs}
    for m in msgs:
        v = m["value"]
        assert v["schema"] == "changetrail.event.v1" and v["source"] == "pytest"
        assert m["key"] == f'{v["collection"]}/{v["document_id"]}'
        assert m["headers"]["ct-schema"] == b"changetrail.event.v1"
        assert "password" not in m["value"].get("after", {})
        assert "password" not in m["value"].get("before", {})
        assert '"pw' not in str(v) and "ssn-secret-4711" not in str(v)

    first = by_id[outside]["value"]
    assert "context" not in first and "actor" not in first and first["op"] == "insert"

    ins, upd, snap, ev, radd, rrem, child, dele = (by_id[i]["value"] for i in ids)
    for v in (ins, upd, snap, ev, radd, rrem, child, dele):
        assert v["context"]["id"] == root
    assert ins["context"]["metadata"] == {"user": "alice", "url": "/accounts/a1"}
    assert upd["context"]["metadata"] == {"user": "alice", "url": "/accounts/a1", "step": "inner"}
    assert ins["actor"] == "alice" and snap["actor"] == "scanner"
    assert ins["after"] == {"name": "A", "profile": {"city": "Oslo"}, "joined": "2024-05-01",
                            "balance": "10.50"}
    assert upd["op"] == "update" and upd["after"] == {"name": "B"} and upd["before"] == {"name": "A"}
    assert upd["seq"] == 2
    assert snap["op"] == "snapshot" and ev["op"] == "event" and ev["label"] == "exported"
    assert radd["op"] == "relation_add" and rrem["op"] == "relation_remove"
    assert radd["relation"] == {"name": "groups", "collection": "groups", "document_id": "g1"}
    assert child["parent"] == {"collection": "accounts", "document_id": "a1"}
    assert dele["op"] == "delete" and "after" not in dele and dele["before"] == {"name": "B"}

    markers = [m["value"] for m in msgs if m["value"]["collection"] == "_changetrail.context"]
    assert sorted(v["op"] for v in markers) == ["context_begin", "context_end"]
    assert all(v["document_id"] == root == v["context"]["id"] for v in markers)
    end = next(v for v in markers if v["op"] == "context_end")
    assert end["context"]["metadata"]["step"] == "inner"

    # per-document order: a1's events are on one partition, in emit order
    a1 = [m for m in msgs if m["key"] == "accounts/a1"]
    assert len({m["partition"] for m in a1}) == 1
    assert [m["value"]["event_id"] for m in sorted(a1, key=lambda m: m["offset"])] == \
        [ids[0], ids[1], ids[3], ids[4], ids[5], ids[7]]


def test_unchanged_update_sends_nothing_and_delivery_reports(bootstrap, topic, reader):
    reports = []
    lock = threading.Lock()

    def on_delivery(d):
        with lock:
            reports.append(d)

    with Producer(_producer(bootstrap, topic), on_delivery=on_delivery) as p:
        eid = p.emit_insert("accounts", "u1", {"n": 1})
        # only the excluded field differs: no tracked change, no event
        assert p.emit_update("accounts", "u1", {"n": 1, "password": "new"},
                             before={"n": 1, "password": "old"}) is None
        p.flush(10)
        assert p.stats()["unchanged"] == 1
    assert len(reports) == 1
    d = reports[0]
    assert d.ok and d.event_id == eid and d.collection == "accounts" and d.document_id == "u1"
    assert d.partition >= 0 and d.offset >= 0
    assert [m["value"]["event_id"] for m in reader.read(topic, expect=1)] == [eid]


def test_contexts_are_per_thread(bootstrap, topic, reader):
    with Producer(_producer(bootstrap, topic)) as p:
        seen = {}

        def request(n):
            with context(p, user=f"user{n}") as cid:
                p.emit_insert("accounts", f"t{n}", {"n": n})
                seen[n] = cid

        threads = [threading.Thread(target=request, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        p.flush(10)
    assert len(set(seen.values())) == 3
    msgs = [m["value"] for m in reader.read(topic, expect=9) if m["value"]["collection"] == "accounts"]
    assert {v["document_id"]: (v["context"]["id"], v["actor"]) for v in msgs} == \
        {f"t{n}": (seen[n], f"user{n}") for n in range(3)}


def test_mongoengine_handlers_with_a_duck_typed_document(bootstrap, topic, reader):
    from changetrail import mongoengine as me  # must import without mongoengine installed

    class ObjectId:  # stands in for bson.ObjectId
        def __init__(self, h):
            self.h = h

        def __str__(self):
            return self.h

    class Post:
        def __init__(self, pk, title):
            self.pk, self.title = pk, title

        def _get_collection_name(self):
            return "posts"

        def to_mongo(self):
            return {"_id": ObjectId(self.pk), "title": self.title,
                    "at": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)}

    with Producer(_producer(bootstrap, topic)) as p:
        me._connected[Post] = p
        try:
            doc = Post("65a1b2c3d4e5f6a7b8c9d0e1", "hello")
            me.on_post_save(Post, doc, created=True)
            doc.title = "hello again"
            me.on_post_save(Post, doc, created=False)
            me.on_post_delete(Post, doc)
        finally:
            me._connected.pop(Post)
        p.flush(10)
    msgs = sorted(reader.read(topic, expect=3), key=lambda m: m["offset"])
    assert [m["key"] for m in msgs] == ["posts/65a1b2c3d4e5f6a7b8c9d0e1"] * 3
    assert [m["value"]["op"] for m in msgs] == ["insert", "update", "delete"]
    assert msgs[0]["value"]["after"] == {"_id": "65a1b2c3d4e5f6a7b8c9d0e1", "title": "hello",
                                         "at": "2024-01-02T03:04:05+00:00"}
    assert msgs[2]["value"]["before"]["title"] == "hello again"
