"""Contexts that follow the code, not the thread: asyncio tasks (two
concurrent requests through the async middleware), decorators, the context
captured by a Django change and emitted at commit, and the Celery-style
hand-off (in-process and to another process: the same context id), read back
from the real broker."""
import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest

import changetrail
from changetrail import Producer, context, current_context_id
from changetrail import celery as ctcelery


def _conf(bootstrap, topic):
    return {"source": "pytest", "topic": topic, "kafka.bootstrap.servers": bootstrap, "kafka.linger.ms": 5}


def _values(reader, topic, expect):
    return [m["value"] for m in reader.read(topic, expect=expect)]


def test_asyncio_requests_keep_their_own_context(bootstrap, topic, reader):
    pytest.importorskip("django")
    from django.http import HttpResponse
    from django.test import AsyncRequestFactory

    import changetrail.django as ctd

    p = Producer(_conf(bootstrap, topic))
    seen = {}
    both_in = asyncio.Event()
    arrived = []

    async def view(request):
        name = request.GET["n"]
        seen[name] = current_context_id()
        arrived.append(name)
        if len(arrived) == 2:
            both_in.set()
        await both_in.wait()          # both requests are inside their contexts now
        p.emit_insert("docs", name, {"n": name})
        await asyncio.sleep(0.01)
        p.emit_update("docs", name, {"n": name, "again": True})
        assert current_context_id() == seen[name]
        return HttpResponse(name)

    class U:
        is_authenticated = True

        def __init__(self, n):
            self.n = n

        def get_username(self):
            return self.n

    mw = ctd.ChangetrailMiddleware(view)
    mw.producer = p
    assert asyncio.iscoroutinefunction(mw)

    def req(n):
        r = AsyncRequestFactory().get(f"/docs/?n={n}", headers={"X-Request-ID": f"rid-{n}"})

        async def auser():
            return U(f"user-{n}")
        r.auser = auser
        return r

    async def main():
        return await asyncio.gather(mw(req("a")), mw(req("b")))

    try:
        res = asyncio.run(main())
        assert [r.content for r in res] == [b"a", b"b"]
        p.flush(10)
    finally:
        p.close()
    assert seen["a"] != seen["b"] and None not in seen.values()
    vals = [v for v in _values(reader, topic, 8) if v["collection"] == "docs"]
    assert len(vals) == 4
    for v in vals:
        n = v["document_id"]
        assert v["context"]["id"] == seen[n] and v["actor"] == f"user-{n}"
        assert v["context"]["metadata"] == {"method": "GET", "url": f"/docs/?n={n}", "user": f"user-{n}",
                                            "request_id": f"rid-{n}"}


def test_decorator_and_default_producer(bootstrap, topic, reader):
    p = Producer(_conf(bootstrap, topic))
    changetrail.set_default_producer(p)
    ids = []

    @context(job="nightly")
    def job(n):
        ids.append(current_context_id())
        p.emit_insert("jobs", str(n), {"n": n})

    @context(job="async")
    async def ajob(n):
        ids.append(current_context_id())
        with context(step=n) as inner:      # nests: the same id, metadata merged
            assert inner == ids[-1]
            p.emit_insert("jobs", str(n), {"n": n})

    try:
        job(1)
        job(2)
        asyncio.run(ajob(3))
        assert current_context_id() is None
        p.flush(10)
    finally:
        changetrail.set_default_producer(None)
        p.close()
    assert len(set(ids)) == 3
    vals = {v["document_id"]: v for v in _values(reader, topic, 9) if v["collection"] == "jobs"}
    assert [vals[str(n)]["context"]["id"] for n in (1, 2, 3)] == ids
    assert vals["1"]["context"]["metadata"] == {"job": "nightly"}
    assert vals["3"]["context"]["metadata"] == {"job": "async", "step": 3}


WORKER = r"""
import json, sys
import changetrail
from changetrail import celery as ctcelery
conf, headers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
with changetrail.Producer(conf) as p:
    changetrail.set_default_producer(p)
    with ctcelery.task_context(headers, task="shop.reindex") as cid:
        p.emit_insert("tasks", "remote", {"done": True})
        print(cid)
    p.flush(10)
"""


def test_celery_style_hand_off_keeps_the_context_id(bootstrap, topic, reader):
    p = Producer(_conf(bootstrap, topic))
    changetrail.set_default_producer(p)
    try:
        with context(user="alice", url="/reindex") as cid:
            headers = ctcelery.context_headers()
            assert headers[ctcelery.HEADER_ID] == cid
            assert json.loads(headers[ctcelery.HEADER_METADATA]) == {"user": "alice", "url": "/reindex"}
            # a worker thread of this process: the live context itself
            out = {}

            def local_task():
                assert current_context_id() is None
                with ctcelery.task_context(headers, task="shop.local") as tcid:
                    out["cid"] = tcid
                    p.emit_insert("tasks", "local", {"done": True})
            t = threading.Thread(target=local_task)
            t.start()
            t.join()
            assert out["cid"] == cid
            # another process: the context continued by id (ct_context_join)
            env = dict(os.environ)
            r = subprocess.run([sys.executable, "-c", WORKER, json.dumps(_conf(bootstrap, topic)),
                                json.dumps(headers)], capture_output=True, text=True, timeout=60, env=env)
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == cid
        with ctcelery.task_context({}, task="no-headers") as fresh:
            assert fresh != cid
        p.flush(10)
    finally:
        changetrail.set_default_producer(None)
        p.close()
    vals = _values(reader, topic, 6)
    tasks = {v["document_id"]: v for v in vals if v["collection"] == "tasks"}
    assert tasks["local"]["context"]["id"] == cid and tasks["remote"]["context"]["id"] == cid
    assert tasks["remote"]["actor"] == "alice"
    assert tasks["remote"]["context"]["metadata"] == {"user": "alice", "url": "/reindex", "task": "shop.reindex"}
    markers = sorted(v["op"] for v in vals if v["collection"] == "_changetrail.context" and v["document_id"] == cid)
    assert markers == ["context_begin", "context_end"], "the worker sends no markers of its own"


def test_join_refuses_a_bad_id(bootstrap, topic):
    with Producer(_conf(bootstrap, topic)) as p:
        with pytest.raises(changetrail.ChangetrailError) as ei:
            with changetrail.join_context("not-a-uuid", p):
                pass
        assert ei.value.code == changetrail.CT_EINVAL


def test_django_change_emitted_at_commit_keeps_its_context(bootstrap, topic, reader):
    pytest.importorskip("django")
    from django.db import transaction

    import changetrail.django as ctd
    from ctapp.models import Product

    p = Producer(_conf(bootstrap, topic))
    ctd.set_producer(p)
    try:
        with transaction.atomic():
            with context(p, user="carol") as cid:
                obj = Product.objects.create(sku="CTX-1", stock=1)
            assert current_context_id() is None
            p.flush(5)
            assert p.stats()["emitted"] == 1   # the begin marker only; the insert waits for the commit
        p.flush(10)
    finally:
        ctd.set_producer(None)
        p.close()
        qs = Product.objects.filter(pk=obj.pk)
        qs._raw_delete(qs.db)
    vals = sorted(reader.read(topic, expect=3), key=lambda m: (m["partition"], m["offset"]))
    ins = [m["value"] for m in vals if m["value"]["collection"] == "ctapp.product"]
    assert len(ins) == 1 and ins[0]["context"]["id"] == cid and ins[0]["actor"] == "carol"
    kinds = [m["value"]["op"] for m in vals if m["value"]["collection"] == "_changetrail.context"]
    assert sorted(kinds) == ["context_begin", "context_end"]
    end = next(m for m in vals if m["value"]["op"] == "context_end")
    assert end["value"]["ts"] >= ins[0]["ts"], "the changeset ends after the event it waited for"
