"""The examples of docs/python.md, run as written: every ```python block
that starts with `# [name]` runs, in the page's order, in one namespace,
against the real broker (the emits), the consumer (run before the first
block that reads) and the local MongoDB server. Only the addresses, the topic
and the database are replaced by the test's own. Every other python block
must say `# (shown, not run)`, so no example goes unrun silently."""
import os
import re

import pytest

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs", "python.md")
READS = {"read", "revert"}      # blocks that need the consumer to have run first


def blocks():
    text = open(DOC, encoding="utf-8").read()
    out = []
    for body in re.findall(r"```python\n(.*?)```", text, re.S):
        m = re.match(r"# \[(\w+)\]", body)
        if m:
            out.append((m.group(1), body))
        else:
            assert body.startswith("# (shown, not run)"), "a python block that is neither run nor marked: " + body
    return out


def test_every_example_runs(pipeline):
    import changetrail
    ran = []
    ns = {}
    drained = False
    try:
        for name, body in blocks():
            if name in READS and not drained:
                ns["producer"].flush(10)
                pipeline.drain()
                drained = True
            code = (body.replace('"localhost:9092"', repr(pipeline.bootstrap))
                    .replace('"mongodb://localhost:27017/"', repr(pipeline.uri))
                    .replace('"changetrail.events"', repr(pipeline.topic))
                    .replace('database="changetrail"', "database=%r" % pipeline.database))
            exec(compile(code, f"{DOC}:[{name}]", "exec"), ns)
            ran.append(name)
        pipeline.drain()
        h = ns["h"]
        now = h.version("orders", "7")
        assert now["version"] == 4 and now["doc"] == {"qty": 2}, "the revert went through the consumer"
    finally:
        changetrail.set_default_producer(None)
        if "producer" in ns:
            ns["producer"].close()
    assert ran == ["emit", "async", "celery", "read", "revert"]
