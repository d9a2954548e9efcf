"""changetrail.history: events emitted with the binding go through the real
broker and the consumer daemon into MongoDB, and are read back: log, version,
as_of, context, actor, blame, revert (emitted, then consumed again); the
diff in dictdiffer form applies with dictdiffer itself."""
import time

import pytest

from changetrail import Producer, context
from changetrail.history import HistoryError, ts_us_of


def _tick():
    time.sleep(0.05)
    from datetime import datetime, timezone
    t = datetime.now(timezone.utc)
    time.sleep(0.05)
    return t


def test_reading_history(pipeline):
    dictdiffer = pytest.importorskip("dictdiffer")
    marks = {}
    with Producer(pipeline.producer_config()) as p:
        marks["before"] = _tick()
        with context(p, user="alice", url="/things/1") as c1:
            p.emit_insert("things", "1", {"name": "A", "qty": 10, "tags": ["x"], "dims": {"w": 1}})
        marks["v1"] = _tick()
        with context(p, user="bob") as c2:
            p.emit_update("things", "1", {"name": "B", "qty": 7, "tags": ["x", "y"], "dims": {"w": 2}})
        marks["v2"] = _tick()
        p.relation_add("things", "1", "groups", "groups", "g1", actor="carol")
        p.emit_update("things", "1", {"name": "B", "qty": 4, "tags": ["y"], "dims": {"w": 2}}, actor="carol")
        marks["v4"] = _tick()
        p.emit_delete("things", "1", actor="dave")
        p.flush(10)
    pipeline.drain()
    h = pipeline.history()

    log = h.log("things", "1")
    assert [r["version"] for r in log] == [5, 4, 3, 2, 1]
    assert [r["op"] for r in log] == ["delete", "update", "relation_add", "update", "insert"]
    v1, v2 = log[4], log[3]
    assert v1["actor"] == "alice" and v1["context_id"] == c1 and v2["context_id"] == c2
    # (the producer sends documents in canonical form: keys sorted)
    assert v2["diff"] == [("change", "dims.w", (1, 2)), ("change", "name", ("A", "B")),
                          ("change", "qty", (10, 7)), ("add", "tags", [(1, "y")])]
    # the dictdiffer form is dictdiffer's: patch version by version
    doc = {}
    for r in reversed(log[1:]):
        if r["op"] != "relation_add":
            doc = dictdiffer.patch(r["diff"], doc)
    assert doc == {"name": "B", "qty": 4, "tags": ["y"], "dims": {"w": 2}}
    assert dictdiffer.revert(log[1]["diff"], doc) == {"name": "B", "qty": 7, "tags": ["x", "y"], "dims": {"w": 2}}
    assert [r["version"] for r in h.log("things", "1", since=marks["v1"], until=marks["v4"])] == [4, 3, 2]

    # state at a version and at a time
    assert h.version("things", "1", 2)["doc"] == {"name": "B", "qty": 7, "tags": ["x", "y"], "dims": {"w": 2}}
    assert h.version("things", "1", 3)["doc"] == h.version("things", "1", 2)["doc"]
    last = h.version("things", "1")
    assert last["version"] == 5 and last["deleted"] and last["doc"]["qty"] == 4
    assert h.as_of("things", "1", marks["before"]) is None
    assert h.as_of("things", "1", marks["v1"])["doc"]["qty"] == 10
    assert h.as_of("things", "1", marks["v2"].isoformat())["version"] == 2
    assert h.as_of("things", "1", marks["v4"])["doc"]["tags"] == ["y"]
    with pytest.raises(HistoryError):
        h.version("things", "1", 9)
    assert ts_us_of("2024-05-01T10:00:00.000001Z") == 1714557600000001

    # contexts, actors, blame
    c = h.context(c1)
    assert c["metadata"] == {"user": "alice", "url": "/things/1"} and c["actor"] == "alice"
    assert [(r["collection"], r["version"]) for r in c["records"]] == [("things", 1)]
    assert [r["version"] for r in h.actor("carol")] == [4, 3]
    assert h.actor("carol", since=marks["v4"]) == []
    assert [r["version"] for r in h.actor("alice", until=marks["v1"])] == [1]
    blame = {tuple(b["path"]): (b["value"], b["version"], b["actor"]) for b in h.blame("things", "1")}
    assert blame == {("name",): ("B", 2, "bob"), ("qty",): (4, 4, "carol"), ("tags", 0): ("y", 4, "carol"),
                     ("dims", "w"): (2, 2, "bob")}

    # revert: the document at version 1, sent as an update (re-creating it), recorded as version 6
    with Producer(pipeline.producer_config()) as p:
        doc = h.revert("things", "1", version=1, emit=True, producer=p, label="revert")
        p.flush(10)
    assert doc == {"name": "A", "qty": 10, "tags": ["x"], "dims": {"w": 1}}
    pipeline.drain()
    now = h.version("things", "1")
    assert now["version"] == 6 and not now["deleted"] and now["doc"] == doc
    assert h.revert("things", "1", since=marks["v2"], emit=False)["qty"] == 7


def test_pruned_history_reads_from_the_checkpoint(pipeline):
    """After `changetrail prune` (the CLI) replaced versions 1..3 by a
    checkpoint, states rebuild from it, and older versions are reported as
    pruned, as the C library does."""
    import os
    import subprocess
    from conftest import SOURCE
    cli = os.environ.get("CT_CLI_BIN") or os.path.join(SOURCE, "build", "cli", "changetrail")
    with Producer(pipeline.producer_config()) as p:
        for qty in (1, 2, 3):
            p.emit_update("stock", "s1", {"qty": qty}, actor="alice")
        p.flush(10)
    pipeline.drain()
    t3 = _tick()
    time.sleep(1.1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGETRAIL_")}
    r = subprocess.run([cli, "prune", "--older-than", "1s", "--uri", pipeline.uri, "--db", pipeline.database],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    with Producer(pipeline.producer_config()) as p:
        p.emit_update("stock", "s1", {"qty": 4}, actor="bob")
        p.flush(10)
    pipeline.drain()
    h = pipeline.history()
    log = h.log("stock", "s1")
    assert [(r["version"], r["op"]) for r in log] == [(4, "update"), (3, "checkpoint")]
    assert log[1]["doc"] == {"qty": 3}
    assert h.version("stock", "s1", 3)["doc"] == {"qty": 3}
    assert h.version("stock", "s1")["doc"] == {"qty": 4}
    assert h.as_of("stock", "s1", t3)["version"] == 3
    with pytest.raises(HistoryError, match="pruned"):
        h.version("stock", "s1", 1)
    with pytest.raises(HistoryError, match="pruned"):
        h.as_of("stock", "s1", log[1]["ts"] - __import__("datetime").timedelta(seconds=1))
    assert [(b["path"], b["version"], b["op"]) for b in h.blame("stock", "s1")] == [(["qty"], 4, "update")]
